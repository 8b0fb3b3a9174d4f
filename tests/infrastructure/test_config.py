"""cdk.json is parsed into one typed, frozen, validated configuration per environment."""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import pytest

from stacks.config import (
    ENVIRONMENT_NAMES,
    ENVIRONMENTS_KEY,
    ConfigError,
    EnvironmentConfig,
    load_environments,
    parse_environments,
    read_cdk_json,
)
from tests.infrastructure.conftest import Synthesis


@pytest.fixture
def document() -> dict[str, Any]:
    return copy.deepcopy(read_cdk_json())


def _environment(document: dict[str, Any], name: str) -> dict[str, Any]:
    environment: dict[str, Any] = document["context"][ENVIRONMENTS_KEY][name]
    return environment


def test_cdk_json_defines_dev_staging_and_prod_as_typed_objects() -> None:
    configs = load_environments()

    assert tuple(configs) == ENVIRONMENT_NAMES
    assert all(isinstance(config, EnvironmentConfig) for config in configs.values())
    assert [config.name for config in configs.values()] == list(ENVIRONMENT_NAMES)


def test_a_configuration_cannot_be_changed_after_loading() -> None:
    config = load_environments()["dev"]

    with pytest.raises(pydantic.ValidationError):
        config.database.multi_az = True


def test_a_misspelt_key_is_an_error(document: dict[str, Any]) -> None:
    _environment(document, "staging")["cache"]["nodeTyp"] = "cache.t4g.micro"

    with pytest.raises(ConfigError, match="staging"):
        parse_environments(document)


def test_a_missing_environment_is_an_error(document: dict[str, Any]) -> None:
    del document["context"][ENVIRONMENTS_KEY]["staging"]

    with pytest.raises(ConfigError, match="exactly dev, staging, prod"):
        parse_environments(document)


def test_an_eviction_policy_that_could_evict_the_revision_key_is_an_error(document: dict[str, Any]) -> None:
    _environment(document, "prod")["cache"]["maxmemoryPolicy"] = "allkeys-lru"

    with pytest.raises(ConfigError, match="maxmemoryPolicy"):
        parse_environments(document)


def test_multi_az_cache_without_a_replica_is_an_error(document: dict[str, Any]) -> None:
    _environment(document, "dev")["cache"]["multiAz"] = True

    with pytest.raises(ConfigError, match="replica"):
        parse_environments(document)


def test_reserved_concurrency_beyond_half_the_database_connections_is_an_error(document: dict[str, Any]) -> None:
    _environment(document, "dev")["function"]["reservedConcurrency"] = 40  # 40 + 3 > 80 / 2

    with pytest.raises(ConfigError, match="half of database.maxConnections"):
        parse_environments(document)


def test_a_log_retention_cloudwatch_does_not_offer_is_an_error(document: dict[str, Any]) -> None:
    _environment(document, "dev")["logRetentionDays"] = 10

    with pytest.raises(ConfigError, match="no retention of 10 days"):
        parse_environments(document)


def test_the_app_is_built_with_the_feature_flags_and_strong_cross_stack_references(synthesis: Synthesis) -> None:
    """What cdk.json's context says reaches the app that synthesizes (as the CLI would pass it)."""
    node = synthesis.stacks["dev"].node

    assert node.try_get_context("@aws-cdk/core:defaultCrossStackReferences") == "strong"
    assert node.try_get_context("@aws-cdk/aws-ec2:restrictDefaultSecurityGroup") is True
