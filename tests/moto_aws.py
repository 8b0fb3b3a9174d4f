"""moto for every tier: AWS APIs answered in process (no network), one fresh account per test.

Use `aws` as a fixture (`pytest_plugins` is not needed: import it into the test module). Powertools'
parameter providers keep their boto3 clients and cached values between calls: they are cleared before
and after each test so nothing leaks from one mocked account to the next.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

REGION = "eu-central-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    parameters.clear_caches()
    with mock_aws():
        yield
    parameters.clear_caches()
