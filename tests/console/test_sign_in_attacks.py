"""Deployed sign-in under attack, in headless Chromium against the Cognito stand-in (tests/console/cognito_stand_in.py).

A return to the console that this tab did not ask for (a crafted link) and a sign-out during a renewal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.cognito_stand_in import StandIn, User, b64url
from tests.console.stack import ACTION_TIMEOUT_MS

pytestmark = [pytest.mark.timeout(120)]
PHISHING = "Your account is locked. Call +1 555 0100 to unlock it."


@pytest.fixture
def page(browser: Browser, stand_in: StandIn) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    yield context.new_page()
    context.close()


def forged_return(stand_in: StandIn, **params: str) -> str:
    return f"{stand_in.console_url}?{urlencode(params)}"


@pytest.mark.parametrize(
    "params",
    [
        {"error": "access_denied", "error_description": PHISHING},
        {"error": "access_denied", "error_description": PHISHING, "state": "guessed"},
        {"code": "attackers-code", "state": "guessed"},
    ],
)
def test_a_crafted_return_link_neither_shows_its_words_nor_signs_the_tab_out(
    page: Page, stand_in: StandIn, params: dict[str, str]
) -> None:
    stand_in.next_user = User("editor@example.com", ["flag-editors"])
    page.goto(stand_in.console_url)
    page.click('[data-action="sign-in"]')
    expect(page.locator('[data-flag-key="checkout-v2"]')).to_be_visible()

    page.goto(forged_return(stand_in, **params))

    expect(page.locator('[data-flag-key="checkout-v2"]')).to_be_visible()  # still signed in
    expect(page.locator("[data-user]")).to_have_text("editor@example.com (flag-editors)")
    assert PHISHING not in page.locator("body").inner_text()
    assert "error" not in page.url and "code=" not in page.url


def test_a_crafted_error_link_to_a_signed_out_tab_shows_a_plain_message_not_its_words(
    page: Page, stand_in: StandIn
) -> None:
    page.goto(forged_return(stand_in, error="access_denied", error_description=PHISHING))
    expect(page.locator('[data-action="sign-in"]')).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="not for this tab")).to_be_visible()
    assert PHISHING not in page.locator("body").inner_text()


RENEW_DURING_SIGN_OUT_JS = """async ({ url, config, idToken }) => {
  const { CognitoSession } = await import(url + "/signin.js");
  sessionStorage.setItem("flags-console-session", JSON.stringify({ idToken, refreshToken: "r", identityId: "i" }));
  let release;
  const held = new Promise((resolve) => (release = resolve));
  const answer = (body) => new Response(JSON.stringify(body), { status: 200 });
  window.fetch = async (target) => {
    if (String(target).endsWith("/oauth2/token")) {
      await held;  // Cognito answers the refresh only after the person has signed out
      return answer({ id_token: idToken });
    }
    const expiration = Date.now() / 1000 + 3600;
    return answer({ Credentials: { AccessKeyId: "AK", SecretKey: "SK", SessionToken: "ST", Expiration: expiration } });
  };
  const session = new CognitoSession(config);
  const renewal = session.fresh().then(() => "renewed", (error) => error.name);
  await new Promise((resolve) => setTimeout(resolve, 50));
  session.forget();  // what signOut() does first
  release();
  const outcome = await renewal;
  return { outcome, stored: sessionStorage.getItem("flags-console-session"), credentials: session.credentials };
}"""


def test_a_renewal_that_finishes_after_sign_out_does_not_sign_the_tab_in_again(page: Page, stand_in: StandIn) -> None:
    page.goto(stand_in.console_url + "/favicon.svg")  # an origin to import from
    expired = f"{b64url(b'{}')}.{b64url(json.dumps({'exp': 1}).encode())}.sig"
    got = page.evaluate(
        RENEW_DURING_SIGN_OUT_JS, {"url": stand_in.console_url, "config": stand_in.sign_in_config(), "idToken": expired}
    )
    assert got == {"outcome": "SignInNeeded", "stored": None, "credentials": None}
