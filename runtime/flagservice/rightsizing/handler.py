"""The scheduled right-sizing function: metrics in, ONE recommendation out (SNS ops topic, one log line, returned).

EventBridge Scheduler invokes it quarterly; `flagctl rightsize --env <env>` invokes it on demand and
prints what it returns. The event is ignored: everything comes from the settings below.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from flagservice.rightsizing import metrics
from flagservice.rightsizing.prices import load_prices
from flagservice.rightsizing.rule import Recommendation, evidence, recommend

logger = Logger(service="flagservice-rightsizing")
SUBJECT_MAX = 100  # SNS: a subject is at most 100 printable ASCII characters


class RightsizingSettings(BaseModel):
    """Environment variables (set by stacks/constructs/rightsizing.py from cdk.json)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    FLAGS_ENV: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    CACHE_GROUP_ID: str = Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")
    CACHE_REPLICAS: int = Field(ge=0, le=5)
    CACHE_SHARDS: int | None = Field(default=None, ge=1, le=500)  # cluster mode: its node groups (else unset)
    CACHE_NODE_TYPE: str = Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    CACHE_ENGINE: Literal["valkey", "redis"]
    OPS_TOPIC_ARN: str = Field(pattern=r"^arn:aws[a-z-]*:sns:")
    LOOKBACK_DAYS: int = Field(default=90, ge=1, le=455)  # hourly data is kept 455 days


def analyse(settings: RightsizingSettings, cloudwatch: Any, now: datetime) -> Recommendation:
    nodes = metrics.node_ids(settings.CACHE_GROUP_ID, settings.CACHE_REPLICAS, settings.CACHE_SHARDS)
    points = metrics.fetch(cloudwatch, nodes, *metrics.window(now, settings.LOOKBACK_DAYS))
    seen = evidence(metrics.values(points), points["evictions"])
    return recommend(settings.CACHE_NODE_TYPE, len(nodes), load_prices(settings.CACHE_ENGINE), seen)


def subject(settings: RightsizingSettings, found: Recommendation) -> str:
    move = found.node_type_now if found.action == "keep" else f"{found.node_type_now} -> {found.node_type_recommended}"
    return f"Cache right-sizing ({settings.FLAGS_ENV}): {found.action} {move}"[:SUBJECT_MAX]


def message(settings: RightsizingSettings, found: Recommendation) -> str:
    """What on-call reads first, then the whole recommendation as JSON (docs/operations.md: how to act)."""

    def usd(amount: float | None) -> str:
        return "unknown" if amount is None else f"${amount:,.2f}"

    lines = [
        f"Environment {settings.FLAGS_ENV}, cache {settings.CACHE_GROUP_ID} "
        f"({found.nodes} nodes, {settings.CACHE_ENGINE})",
        f"Recommendation: {found.action}: {found.node_type_now} -> {found.node_type_recommended}",
        f"Reason: {found.reason}",
        f"Monthly list price: {usd(found.monthly_usd_now)} now, {usd(found.monthly_usd_recommended)} after "
        f"(price table {found.prices.get('date')}, {found.prices.get('region')})",
        "",
        json.dumps(found.as_dict(), indent=2, sort_keys=True),
    ]
    return "\n".join(lines)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3  # type: ignore[import-untyped]  # in the Lambda runtime; imported late to keep tests fast to collect

    settings = RightsizingSettings.model_validate(dict(os.environ))
    found = analyse(settings, boto3.client("cloudwatch"), datetime.now(UTC))
    region = os.environ.get("AWS_REGION")
    if region and region != found.prices.get("region"):
        logger.warning("price table is for another region", price_region=found.prices.get("region"), region=region)
    logger.info("cache right-sizing recommendation", environment=settings.FLAGS_ENV, **found.as_dict())
    boto3.client("sns").publish(
        TopicArn=settings.OPS_TOPIC_ARN, Subject=subject(settings, found), Message=message(settings, found)
    )
    return found.as_dict()
