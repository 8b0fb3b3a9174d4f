"""Deployed sign-in in headless Chromium: SigV4 in the browser, the hosted UI and identity pool flow, groups.

The signer (sigv4.js) is checked against values our code did not produce: AWS's published SigV4
test-suite vectors, and botocore's signer with a frozen clock for the console's own requests. The flow runs
against tests/console/cognito_stand_in.py (hosted UI, identity pool and an IAM-authorizing gateway that
re-checks every signature with botocore).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from playwright.sync_api import Browser, Page, expect

from tests.console.cognito_stand_in import REGION, StandIn, User
from tests.console.stack import ACTION_TIMEOUT_MS

pytestmark = [pytest.mark.timeout(120)]
MOMENT = datetime.datetime(2026, 3, 14, 9, 26, 53)
SUITE = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SIGN_IN_JS = """async (cases) => {
  const { sign } = await import("./console/sigv4.js");
  const out = [];
  for (const c of cases) {
    const headers = await sign({ ...c, now: new Date(c.now) });
    out.push(headers.Authorization);
  }
  return out;
}"""


@pytest.fixture
def page(browser: Browser, stand_in: StandIn) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"the page threw: {errors}"


def browser_signatures(page: Page, stand_in: StandIn, cases: list[dict[str, Any]]) -> list[str]:
    page.goto(stand_in.console_url.removesuffix("/console") + "/console/favicon.svg")  # an origin to import from
    return page.evaluate(SIGN_IN_JS.replace("./console/", stand_in.console_url + "/"), cases)  # type: ignore[no-any-return]


def botocore_signature(case: dict[str, Any], credentials: Credentials, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: MOMENT)
    request = AWSRequest(
        method=case["method"], url=case["url"], data=(case.get("body") or "").encode(), headers=case["headers"]
    )
    botocore.auth.SigV4Auth(credentials, case["service"], case["region"]).add_auth(request)
    return str(request.headers["Authorization"])


# ---- The signer -------------------------------------------------------------------------------------


def test_the_browser_signer_reproduces_aws_published_test_suite_vectors(page: Page, stand_in: StandIn) -> None:
    """get-vanilla and get-vanilla-query-order-key-case (aws-sig-v4-test-suite), 20150830T123600Z."""
    base = {
        "method": "GET", "headers": {}, "region": "us-east-1", "service": "service", "now": "2015-08-30T12:36:00Z",
        "credentials": {"accessKeyId": SUITE.access_key, "secretAccessKey": SUITE.secret_key},
    }  # fmt: skip
    got = browser_signatures(
        page,
        stand_in,
        [
            {**base, "url": "https://example.amazonaws.com/"},
            {**base, "url": "https://example.amazonaws.com/?Param2=value2&Param1=value1"},
        ],
    )
    assert [item.rsplit("Signature=", 1)[1] for item in got] == [
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ]
    assert all("SignedHeaders=host;x-amz-date," in item for item in got)


def test_the_browser_signer_agrees_with_botocore_on_the_consoles_requests(
    page: Page, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = Credentials(
        "ASIAEXAMPLECONSOLE01", "console/secret+key/0123456789abcdefghijKLMN", "Session//Token+a=b=="
    )
    api = "https://a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com/v1"
    json_headers = {"Accept": "application/json", "Content-Type": "application/json"}
    cases = [
        {"method": "GET", "url": f"{api}/admin/flags?limit=1000&after=checkout-v2", "headers": {"Accept": "*/*"}},
        {"method": "PATCH", "url": f"{api}/admin/flags/kill.switch_1", "headers": {**json_headers, "If-Match": '"7"'},
         "body": '{"enabled":false}'},
        {"method": "POST", "url": f"{api}/admin/flags/a-b/revert", "headers": json_headers, "body": '{"version":3}'},
        {"method": "GET", "url": f"{api}/admin/flags/x%20y/history?after=3&limit=50", "headers": {}},
        {"method": "DELETE", "url": "http://127.0.0.1:8080/v1/admin/flags/k", "headers": {"If-Match": "*"}},
    ]  # fmt: skip
    for case in cases:
        case.update(region="eu-central-1", service="execute-api", now=MOMENT.isoformat() + "Z")
    browser_cases = [
        {**case, "credentials": {"accessKeyId": credentials.access_key, "secretAccessKey": credentials.secret_key,
                                 "sessionToken": credentials.token}}
        for case in cases
    ]  # fmt: skip

    assert browser_signatures(page, stand_in, browser_cases) == [
        botocore_signature(case, credentials, monkeypatch) for case in cases
    ]


# ---- The sign-in flow -------------------------------------------------------------------------------


def sign_in(page: Page, stand_in: StandIn, user: User) -> None:
    stand_in.next_user = user
    page.goto(stand_in.console_url)
    page.click('[data-action="sign-in"]')  # off to the hosted UI (the stand-in signs `user` in) and back


def toggle(page: Page, key: str) -> None:
    page.locator(f'[data-flag-key="{key}"] [data-action="toggle"]').click()
    page.click('dialog[open] [data-action="confirm"]')


def test_an_editor_signs_in_through_the_hosted_ui_and_the_admin_calls_arrive_signed_by_the_editors_role(
    page: Page, stand_in: StandIn
) -> None:
    before = len(stand_in.admin_requests)
    sign_in(page, stand_in, User("editor@example.com", ["flag-editors"]))
    expect(page.locator('[data-flag-key="checkout-v2"]')).to_be_visible()
    expect(page.locator("[data-user]")).to_have_text("editor@example.com (flag-editors)")
    assert "code=" not in page.url  # the single-use code is taken off the address bar
    version = stand_in.flags["checkout-v2"]["version"]

    toggle(page, "checkout-v2")
    expect(page.locator('[data-flag-key="checkout-v2"] [data-action="toggle"]')).to_have_attribute(
        "aria-checked", "false"
    )

    requests = stand_in.admin_requests[before:]
    patch = next(request for request in requests if request["method"] == "PATCH")
    assert patch["verdict"] == "flag-editors"  # signature recomputed by botocore for the editors' credentials
    assert patch["headers"]["If-Match"] == f'"{version}"'
    assert all(request["verdict"] == "flag-editors" for request in requests)
    assert not any("Bearer" in request["headers"].get("Authorization", "") for request in requests)
    assert {"GetId", "GetCredentialsForIdentity"} <= set(stand_in.identity_calls)
    stored = page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    issued = stand_in.issued[patch["headers"]["Authorization"].split("Credential=")[1].split("/")[0]]
    assert issued.credentials.secret_key not in stored  # credentials stay in memory, never in storage
    assert page.evaluate("localStorage.length") == 0


def test_a_viewer_can_read_but_a_switch_is_refused_with_a_clear_message_and_nothing_changes(
    page: Page, stand_in: StandIn
) -> None:
    sign_in(page, stand_in, User("viewer@example.com", ["flag-viewers"]))
    expect(page.locator('[data-flag-key="payments-kill-switch"]')).to_be_visible()
    before = dict(stand_in.flags["payments-kill-switch"])

    toggle(page, "payments-kill-switch")

    alert = page.locator("[data-alert]")
    expect(alert).to_contain_text("you can read flags but not change them")
    expect(alert).to_contain_text("flag-editors")
    assert stand_in.admin_requests[-1]["method"] == "PATCH" and stand_in.admin_requests[-1]["verdict"] == "denied"
    assert stand_in.flags["payments-kill-switch"] == before
    expect(page.locator('[data-flag-key="payments-kill-switch"] [data-action="toggle"]')).to_have_attribute(
        "aria-checked", "true"
    )
    expect(page.locator('[data-action="sign-out"]')).to_be_visible()  # still signed in


def test_someone_in_no_group_is_told_to_ask_for_a_group(page: Page, stand_in: StandIn) -> None:
    sign_in(page, stand_in, User("nobody@example.com", []))
    expect(page.get_by_role("alert").filter(has_text="flag-viewers")).to_be_visible()
    expect(page.locator('[data-action="sign-in"]')).to_be_visible()
    assert page.locator("[data-flag-key]").count() == 0


def test_tokens_and_credentials_are_renewed_before_they_expire(page: Page, stand_in: StandIn) -> None:
    stand_in.token_seconds = stand_in.credential_seconds = 120  # inside the console's five-minute margin
    try:
        sign_in(page, stand_in, User("editor@example.com", ["flag-editors"]))
        expect(page.locator('[data-flag-key="checkout-v2"]')).to_be_visible()
        grants, calls = len(stand_in.grants), stand_in.identity_calls.count("GetCredentialsForIdentity")
        page.click('[data-action="refresh"]')
        expect(page.locator("[data-notice]")).to_have_text("Flags read again.")
        assert "refresh_token" in stand_in.grants[grants:]
        assert stand_in.identity_calls.count("GetCredentialsForIdentity") > calls
        admin = [request for request in stand_in.admin_requests if request["path"].startswith("/v1/admin/")]
        assert [request["verdict"] for request in admin if request["verdict"] in ("missing", "invalid")] == []
    finally:
        stand_in.token_seconds = stand_in.credential_seconds = 3600


def test_a_computer_clock_an_hour_behind_is_corrected_from_the_services_date_header(
    browser: Browser, stand_in: StandIn
) -> None:
    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.clock.install(time=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1))
    page = context.new_page()
    before = len(stand_in.admin_requests)
    try:
        sign_in(page, stand_in, User("editor@example.com", ["flag-editors"]))
        expect(page.locator('[data-flag-key="checkout-v2"]')).to_be_visible()
        verdicts = [request["verdict"] for request in stand_in.admin_requests[before:]]
        assert verdicts[0] == "expired" and verdicts[1:] and set(verdicts[1:]) == {"flag-editors"}
    finally:
        context.close()


def test_sign_out_revokes_the_refresh_token_ends_the_hosted_ui_session_and_forgets_the_tab(
    page: Page, stand_in: StandIn
) -> None:
    sign_in(page, stand_in, User("editor@example.com", ["flag-editors"]))
    expect(page.locator('[data-flag-key="checkout-v2"]')).to_be_visible()
    refresh_token = json.loads(page.evaluate("sessionStorage.getItem('flags-console-session')"))["refreshToken"]

    page.click('[data-action="sign-out"]')

    expect(page.locator('[data-action="sign-in"]')).to_be_visible()  # back from /logout
    assert refresh_token in stand_in.revoked
    assert page.evaluate("sessionStorage.length") == 0
    assert page.url == stand_in.console_url
    assert REGION in json.loads(page.locator("body").get_attribute("data-sign-in") or "{}")["region"]
