"""OpenFeature's Python SDK with the OFREP provider (openfeature-provider-ofrep), unchanged, against the local server.

Every evaluation is a real HTTP request from the provider to `python -m local.server`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from tests.ofrep import flags
from tests.ofrep.conftest import LocalServer

pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]
DOMAIN = "ofrep-python-tests"
USER = EvaluationContext(targeting_key="user-42", attributes={"country": "FR", "plan": "pro"})


@pytest.fixture(scope="module")
def connect(ofrep_server: LocalServer) -> Iterator[Callable[..., OpenFeatureClient]]:
    """Registers the OFREP provider for a domain of these tests; every one is removed at the end of the module."""

    def connect_domain(domain: str, **options: Any) -> OpenFeatureClient:
        api.set_provider(OFREPProvider(base_url=ofrep_server.url, **options), domain=domain)
        return api.get_client(domain=domain)

    yield connect_domain
    api.clear_providers()


@pytest.fixture(scope="module")
def client(connect: Callable[..., OpenFeatureClient]) -> OpenFeatureClient:
    """The provider as docs/openfeature.md configures it locally: the base URL, no headers."""
    return connect(DOMAIN)


def test_boolean_flag(client: OpenFeatureClient) -> None:
    details = client.get_boolean_details(flags.BOOLEAN, False, USER)

    assert (details.value, details.variant, details.reason, details.error_code) == (True, "on", Reason.STATIC, None)
    assert details.flag_metadata == {"version": 1}


def test_string_flag_without_a_matching_rule_gives_the_default_variant(client: OpenFeatureClient) -> None:
    details = client.get_string_details(flags.STRING, "fallback", USER)

    assert (details.value, details.variant, details.reason) == ("Welcome", "english", Reason.DEFAULT)


def test_targeting_match(client: OpenFeatureClient) -> None:
    german = EvaluationContext(targeting_key="user-7", attributes={"country": "DE"})

    details = client.get_string_details(flags.STRING, "fallback", german)

    assert (details.value, details.variant, details.reason) == ("Willkommen", "german", Reason.TARGETING_MATCH)


def test_integer_flag(client: OpenFeatureClient) -> None:
    details = client.get_integer_details(flags.INTEGER, 0, USER)

    assert (details.value, details.variant, details.reason, details.error_code) == (50, "large", Reason.STATIC, None)
    assert type(details.value) is int


def test_float_flag_with_a_whole_value_is_still_a_float(client: OpenFeatureClient) -> None:
    # The provider type-checks with isinstance(value, float): a JSON `2` would be a TYPE_MISMATCH.
    details = client.get_float_details(flags.FLOAT, 0.25, USER)

    assert (details.value, details.variant, details.reason, details.error_code) == (2.0, "full", Reason.STATIC, None)
    assert type(details.value) is float


def test_object_flag(client: OpenFeatureClient) -> None:
    details = client.get_object_details(flags.OBJECT, {}, USER)

    assert details.value == {"background": "#101010", "fonts": ["Inter"], "compact": True}
    assert (details.variant, details.reason, details.error_code) == ("dark", Reason.STATIC, None)


@pytest.mark.parametrize("case", flags.split_cases(), ids=lambda case: f"{case['flagKey']}-{case['targetingKey']}")
def test_split_puts_each_user_where_flagd_does(client: OpenFeatureClient, case: dict[str, Any]) -> None:
    user = EvaluationContext(targeting_key=case["targetingKey"])

    details = client.get_string_details(case["flagKey"], "fallback", user)

    assert (details.value, details.variant, details.reason) == (
        case["expectedValue"], case["expectedVariant"], Reason.SPLIT
    )  # fmt: skip


def test_split_is_stable_per_user_and_agrees_with_an_independent_computation(client: OpenFeatureClient) -> None:
    users = [f"user-{n}" for n in range(12)]

    def variants() -> dict[str, str | None]:
        return {
            user: client.get_string_details(flags.SPLIT, "fallback", EvaluationContext(user)).variant for user in users
        }

    first, again = variants(), variants()

    assert first == again
    assert first == {user: flags.reference_variant(flags.SPLIT, user, flags.split_rollout()) for user in users}
    assert len(set(first.values())) > 1, "twelve users should not all land in one quarter"


def test_split_without_a_targeting_key_gives_the_default_and_targeting_key_missing(client: OpenFeatureClient) -> None:
    details = client.get_string_details(flags.SPLIT, "fallback", EvaluationContext(attributes={"country": "DE"}))

    assert (details.value, details.reason, details.error_code) == (
        "fallback",
        Reason.ERROR,
        ErrorCode.TARGETING_KEY_MISSING,
    )


def test_flag_not_found_gives_the_default_value(client: OpenFeatureClient) -> None:
    details = client.get_string_details("no-such-flag", "fallback", USER)

    assert (details.value, details.reason, details.error_code) == ("fallback", Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    assert details.error_message


@pytest.mark.parametrize(
    ("key", "kind", "default"),
    [
        (flags.STRING, "boolean", False),
        (flags.FLOAT, "integer", 7),
        (flags.INTEGER, "float", 7.5),
        (flags.BOOLEAN, "string", "x"),
    ],
)
def test_type_mismatch_gives_the_default_value(client: OpenFeatureClient, key: str, kind: str, default: Any) -> None:
    details = getattr(client, f"get_{kind}_details")(key, default, USER)

    assert (details.value, details.reason, details.error_code) == (default, Reason.ERROR, ErrorCode.TYPE_MISMATCH)


def test_disabled_flag_gives_its_off_variant(client: OpenFeatureClient) -> None:
    details = client.get_string_details(flags.DISABLED, "fallback", USER)

    assert (details.value, details.variant, details.reason, details.error_code) == ("v1", "old", Reason.DISABLED, None)


def test_evaluation_without_any_context_attributes(client: OpenFeatureClient) -> None:
    details = client.get_boolean_details(flags.BOOLEAN, False)

    assert (details.value, details.reason, details.error_code) == (True, Reason.STATIC, None)


def test_an_api_key_header_as_deployed_is_accepted_locally(connect: Callable[..., OpenFeatureClient]) -> None:
    # Deployed, API Gateway requires X-API-Key; the local server has no gateway and ignores it.
    keyed = connect(f"{DOMAIN}-keyed", headers_factory=lambda: {"X-API-Key": "local-not-checked"})

    details = keyed.get_integer_details(flags.INTEGER, 0, USER)

    assert (details.value, details.error_code) == (50, None)
