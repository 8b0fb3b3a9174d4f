"""Failing unit tests from the hostile-tester pass (branch wip-attack)."""

from __future__ import annotations

from typing import Any

import pytest

from flagservice.adapters.postgres_repository import DeadlineExceededError
from flagservice.service import FlagService
from tests.apigw import BEARER, call
from tests.fakes import InMemoryFlagRepository


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/admin/flags", {"key": "k", "enabled": False}),
        ("PATCH", "/admin/flags/k", {"enabled": False}),
        ("GET", "/flags/never-cached", None),
        ("GET", "/health", None),
    ],
)
def test_a_database_deadline_is_503_not_an_unhandled_error(
    fake_service: FlagService,
    fake_repository: InMemoryFlagRepository,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    body: Any,
) -> None:
    """PostgreSQL black-holed: the repository raises DeadlineExceededError (a StoreUnavailableError). The
    handler's error table is looked up by exact type (ERRORS[type(exc)]): KeyError inside the exception
    handler, so the Lambda invocation fails (API Gateway 502; locally the gateway answers 502 GENERAL)."""

    def timed_out(*args: Any, **kwargs: Any) -> Any:
        raise DeadlineExceededError("the database did not answer in time")

    for name in ("save", "update", "get", "keys_at_revision", "revision", "ping"):
        monkeypatch.setattr(fake_repository, name, timed_out)
    answer = call(method, path, body=body, headers=BEARER)
    if path == "/health":
        assert answer.status in (200, 503)
    else:
        assert answer.status == 503, answer.body
        assert answer.json["errorCode"] == "SERVICE_UNAVAILABLE"
