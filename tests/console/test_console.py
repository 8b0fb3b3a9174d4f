"""The console in headless Chromium against the real local server: CONTRACT.md section 6, item by item.

Flags are written "elsewhere" through the admin API with `server`; the console is driven as a person would.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.stack import PHONE, ConsoleServer, horizontal_overflow, open_console

pytestmark = [pytest.mark.real, pytest.mark.timeout(180)]
LIVE_DEADLINE_SECONDS = 2.0  # CONTRACT.md section 6; the stream's own target is 1 s
DEGRADED_TEXT = "Experiencing slower response times"


def row(page: Page, key: str):  # noqa: ANN201 - a Playwright Locator
    return page.locator(f'[data-flag-key="{key}"]')


def switch_of(page: Page, key: str):  # noqa: ANN201
    return row(page, key).locator('[data-action="toggle"]')


def dialog(page: Page):  # noqa: ANN201
    return page.locator("dialog[open]")


def open_flag_page(page: Page, key: str) -> None:
    row(page, key).get_by_role("link", name=key).click()
    expect(page.locator(f'[data-flag-page="{key}"]')).to_be_visible()


# ---- Sign-in ----------------------------------------------------------------------------------------


def test_the_console_asks_for_the_token_refuses_a_wrong_one_and_keeps_a_right_one_in_the_tab(
    browser: Browser, server: ConsoleServer
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.console_url)

    page.fill('[data-action="token"]', "not-the-token-" + "x" * 32)
    page.click('button[type="submit"]')
    expect(page.get_by_role("alert").filter(has_text="refused")).to_be_visible()
    assert page.locator("[data-flag-key]").count() == 0

    page.fill('[data-action="token"]', f"Bearer {server.token}")  # pasted as make dev prints it
    page.click('button[type="submit"]')
    expect(row(page, "payments-kill-switch")).to_be_visible()
    assert page.evaluate("Object.values(sessionStorage)") == [server.token]
    assert page.evaluate("Object.values(localStorage)") == []

    page.reload()
    expect(row(page, "payments-kill-switch")).to_be_visible()  # no second sign-in in this tab
    page.evaluate("Object.keys(sessionStorage).forEach((k) => sessionStorage.setItem(k, 'x'.repeat(40)))")
    page.click('[data-action="refresh"]')  # the service no longer takes the kept token: asked again
    expect(page.get_by_role("alert").filter(has_text="refused")).to_be_visible()
    page.fill('[data-action="token"]', server.token)
    page.keyboard.press("Enter")
    expect(row(page, "payments-kill-switch")).to_be_visible()
    page.click('[data-action="sign-out"]')
    expect(page.locator('[data-action="token"]')).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    context.close()


# ---- The list: search, switch, confirmation, If-Match, 412 ------------------------------------------


def test_search_filters_rows_by_key_and_description_ignoring_case_as_one_types(
    console: Page, server: ConsoleServer
) -> None:
    word = f"zq{uuid.uuid4().hex[:6]}"
    by_key = server.create_flag(f"{word}-key", description="plain")["key"]
    by_description = server.create_flag("other", description=f"About {word.upper()} things")["key"]
    neither = server.create_flag("neither", description="unrelated")["key"]
    expect(row(console, neither)).to_be_visible()  # created elsewhere: the list follows

    console.locator('[data-action="search"]').press_sequentially(word[:4].upper() + word[4:])

    expect(console.locator("[data-flag-key]:visible")).to_have_count(2)
    expect(row(console, by_key)).to_be_visible()
    expect(row(console, by_description)).to_be_visible()
    expect(row(console, neither)).to_be_hidden()
    console.locator('[data-action="search"]').fill("")
    expect(row(console, neither)).to_be_visible()


def test_a_switch_asks_first_then_patches_with_if_match_of_the_version_shown(
    console: Page, server: ConsoleServer
) -> None:
    flag = server.create_flag()
    key = flag["key"]
    expect(switch_of(console, key)).to_have_attribute("aria-checked", "true")
    expect(switch_of(console, key)).to_have_attribute("role", "switch")

    switch_of(console, key).click()
    expect(dialog(console)).to_be_visible()
    dialog(console).locator('[data-action="cancel"]').click()
    expect(dialog(console)).to_be_hidden()
    assert (server.flag(key)["enabled"], server.flag(key)["version"]) == (True, flag["version"])

    switch_of(console, key).click()
    with console.expect_request(lambda request: request.method == "PATCH") as sent:
        dialog(console).locator('[data-action="confirm"]').click()

    assert sent.value.headers["if-match"] == f'"{flag["version"]}"'
    assert sent.value.post_data_json == {"enabled": False}
    expect(switch_of(console, key)).to_have_attribute("aria-checked", "false")
    stored = server.flag(key)
    assert (stored["enabled"], stored["version"]) == (False, flag["version"] + 1)


def test_a_412_shows_the_newer_state_and_asks_again_never_overwriting(console: Page, server: ConsoleServer) -> None:
    flag = server.create_flag(description="as first seen")
    key = flag["key"]
    expect(row(console, key)).to_be_visible()
    switch_of(console, key).click()
    expect(dialog(console)).to_be_visible()

    newer = server.patch(key, {"description": "changed elsewhere"})  # while the dialog is open
    dialog(console).locator('[data-action="confirm"]').click()

    expect(dialog(console).locator("[data-conflict]")).to_have_attribute("data-conflict", str(newer["version"]))
    expect(dialog(console)).to_contain_text(f"version {newer['version']}")
    stored = server.flag(key)
    assert (stored["version"], stored["enabled"], stored["description"]) == (
        newer["version"],
        True,
        "changed elsewhere",
    )

    dialog(console).locator('[data-action="confirm"]').click()  # asked again: yes
    expect(switch_of(console, key)).to_have_attribute("aria-checked", "false")
    stored = server.flag(key)
    assert (stored["version"], stored["enabled"], stored["description"]) == (
        newer["version"] + 1,
        False,
        "changed elsewhere",
    )


def test_a_412_whose_newer_state_already_is_the_wish_says_so_and_writes_nothing(
    console: Page, server: ConsoleServer
) -> None:
    key = server.create_flag()["key"]
    expect(row(console, key)).to_be_visible()
    switch_of(console, key).click()
    newer = server.patch(key, {"enabled": False})

    dialog(console).locator('[data-action="confirm"]').click()

    expect(dialog(console)).to_contain_text("already off")
    expect(dialog(console).locator('[data-action="confirm"]')).to_be_hidden()
    dialog(console).locator('[data-action="cancel"]').click()
    assert server.flag(key)["version"] == newer["version"]


def test_a_flag_can_be_flipped_with_the_keyboard_alone(console: Page, server: ConsoleServer) -> None:
    key = server.create_flag("keyboard")["key"]
    expect(row(console, key)).to_be_visible()

    for _ in range(12):  # from the top of the page to the search field
        console.keyboard.press("Tab")
        if console.evaluate("document.activeElement.dataset.action === 'search'"):
            break
    console.keyboard.type(key)
    console.keyboard.press("Tab")  # the only row left: its link
    console.keyboard.press("Tab")  # and its switch
    assert console.evaluate("document.activeElement.closest('[data-flag-key]')?.dataset.flagKey") == key
    assert console.evaluate("document.activeElement.dataset.action") == "toggle"
    console.keyboard.press("Space")
    expect(dialog(console)).to_be_visible()
    console.keyboard.press("Tab")  # from Cancel (focused first, the safe choice) to Confirm
    console.keyboard.press("Enter")

    expect(switch_of(console, key)).to_have_attribute("aria-checked", "false")
    assert server.flag(key)["enabled"] is False
    assert console.evaluate("document.activeElement.closest('[data-flag-key]')?.dataset.flagKey") == key


# ---- Create and edit --------------------------------------------------------------------------------


def field(page: Page, path: str):  # noqa: ANN201
    return page.locator(f'[data-field="{path}"]')


def enter(page: Page, path: str, value: str) -> None:
    """Type into (or choose in) the control of the field with this API path."""
    control = field(page, path).locator(":scope > input, :scope > select, :scope > textarea")
    if control.evaluate("element => element.tagName") == "SELECT":
        control.select_option(value)
    else:
        control.fill(value)


def test_a_flag_is_created_with_variants_a_rule_and_a_rollout(console: Page, server: ConsoleServer) -> None:
    key = f"created-{uuid.uuid4().hex[:8]}"
    console.click('[data-action="new"]')
    enter(console, "key", key)
    enter(console, "description", "Made in the console")
    field(console, "enabled").locator("input").check()
    enter(console, "type", "string")
    variants = console.locator(".row.variant")
    for index, (name, value) in enumerate([("blue", "#00f"), ("red", "#f00")]):
        variants.nth(index).locator("input").nth(0).fill(name)
        variants.nth(index).locator("input").nth(1).fill(value)
    field(console, "description").locator("input").click()  # leaving the name field: references follow the rename
    console.click('[data-action="add-rule"]')
    enter(console, "rules.0.name", "beta countries")
    enter(console, "rules.0.conditions.0.attribute", "country")
    enter(console, "rules.0.conditions.0.operator", "in")
    enter(console, "rules.0.conditions.0.value", "DE, FR")
    enter(console, "rules.0.variant", "red")
    console.locator('[data-action="split"]').check()
    enter(console, "rollout.0.weight", "30")
    enter(console, "rollout.1.weight", "70")
    console.click('[data-action="save"]')

    expect(console.locator(f'[data-flag-page="{key}"]')).to_be_visible()
    stored = server.flag(key)
    assert {name: stored[name] for name in ("description", "enabled", "variants", "defaultVariant", "offVariant")} == {
        "description": "Made in the console", "enabled": True, "variants": {"blue": "#00f", "red": "#f00"},
        "defaultVariant": "blue", "offVariant": "red",
    }  # fmt: skip
    assert stored["rules"] == [
        {"name": "beta countries", "conditions": [{"attribute": "country", "operator": "in", "values": ["DE", "FR"]}],
         "variant": "red", "rollout": None},
    ]  # fmt: skip
    assert stored["rollout"] == [{"variant": "blue", "weight": 30}, {"variant": "red", "weight": 70}]


def test_a_float_flag_keeps_its_float_values_through_an_edit(console: Page, server: ConsoleServer) -> None:
    key = server.create_flag(
        "ratio", variants={"low": 1.0, "high": 2.5}, defaultVariant="high", offVariant="low"
    )["key"]  # fmt: skip
    open_flag_page(console, key)
    expect(field(console, "type").locator("select")).to_have_value("float")

    enter(console, "description", "edited")
    console.click('[data-action="save"]')

    expect(console.locator(f'[data-flag-page="{key}"] .description')).to_have_text("edited")
    raw = server.admin("GET", f"/admin/flags/{key}/history", params={"limit": "1"}).text  # the stored JSON
    assert '"description":"edited"' in raw and '"low":1.0' in raw and '"high":2.5' in raw


def test_the_apis_400_details_are_shown_next_to_the_fields_they_name(console: Page, server: ConsoleServer) -> None:
    flag = server.create_flag(
        "invalid", rules=[{"conditions": [{"attribute": "age", "operator": "gt", "value": 18}], "variant": "on"}]
    )  # fmt: skip
    key = flag["key"]
    open_flag_page(console, key)

    enter(console, "description", "d" * 1025)
    enter(console, "rules.0.conditions.0.value", "eighteen")
    with console.expect_response(lambda answer: answer.request.method == "PATCH") as answered:
        console.click('[data-action="save"]')
    assert answered.value.status == 400

    description_error = field(console, "description").locator("[data-error]")
    expect(description_error).to_contain_text("at most 1024 characters")
    expect(field(console, "rules.0.conditions.0").locator(":scope > [data-error]")).to_contain_text("gt takes a number")
    expect(field(console, "description").locator("input")).to_have_attribute("aria-invalid", "true")

    enter(console, "description", "fine")
    enter(console, "rules.0.conditions.0.value", "21")
    console.locator('[data-action="split"]').check()
    enter(console, "rollout.0.weight", "60")
    enter(console, "rollout.1.weight", "60")
    console.click('[data-action="save"]')

    expect(field(console, "rollout").locator(":scope > [data-error]")).to_contain_text(
        "rollout weights must sum to 100"
    )
    expect(description_error).to_be_hidden()
    assert server.flag(key)["version"] == flag["version"]  # nothing was written

    enter(console, "rollout.1.weight", "40")
    console.click('[data-action="save"]')
    expect(console.locator(f'[data-history-entry="{flag["version"] + 1}"]')).to_be_visible()
    stored = server.flag(key)
    assert stored["rules"][0]["conditions"][0]["value"] == 21
    assert stored["rollout"] == [{"variant": "on", "weight": 60}, {"variant": "off", "weight": 40}]


def test_an_edit_saved_over_a_newer_version_is_refused_and_the_edits_are_kept(
    console: Page, server: ConsoleServer
) -> None:
    key = server.create_flag(description="original")["key"]
    open_flag_page(console, key)
    enter(console, "description", "mine")

    theirs = server.patch(key, {"description": "theirs"})
    expect(console.locator("[data-banner]")).to_contain_text(f"version {theirs['version']}")
    console.click('[data-action="save"]')

    expect(console.locator("[data-banner]")).to_contain_text("Nothing was overwritten")
    assert server.flag(key)["description"] == "theirs"
    expect(field(console, "description").locator("input")).to_have_value("mine")
    console.click('[data-action="save-over"]')  # asked again, and this time the person says yes
    expect(console.locator(f'[data-flag-page="{key}"] .description')).to_have_text("mine")
    assert server.flag(key)["version"] == theirs["version"] + 1


# ---- A flag's page: history, revert, stats ----------------------------------------------------------


def test_a_flags_history_shows_what_each_write_changed_and_reverts_to_any_version(
    console: Page, server: ConsoleServer
) -> None:
    key = server.create_flag(description="first")["key"]
    server.patch(key, {"description": "second", "enabled": False})
    open_flag_page(console, key)

    second = console.locator('[data-history-entry="2"]')
    expect(second).to_contain_text("patch by local-admin")
    expect(second.locator("del", has_text="first")).to_be_visible()
    expect(second.locator("ins", has_text="second")).to_be_visible()
    expect(second.locator("li", has_text="enabled")).to_contain_text("on → off")
    expect(console.locator('[data-history-entry="1"]')).to_contain_text("create")

    console.locator('[data-history-entry="1"] [data-action="revert"]').click()
    expect(dialog(console)).to_contain_text("Restore version 1")
    with console.expect_request(lambda request: request.url.endswith("/revert")) as sent:
        dialog(console).locator('[data-action="confirm"]').click()

    assert (sent.value.headers["if-match"], sent.value.post_data_json) == ('"2"', {"version": 1})
    expect(console.locator('[data-history-entry="3"]')).to_contain_text("revert by local-admin")
    stored = server.flag(key)
    assert (stored["version"], stored["description"], stored["enabled"]) == (3, "first", True)
    expect(switch_of_page(console, key)).to_have_attribute("aria-checked", "true")


def test_a_long_history_pages_back_to_the_first_version(console: Page, server: ConsoleServer) -> None:
    key = server.create_flag("long-history")["key"]
    for number in range(2, 56):
        server.patch(key, {"description": f"write {number}"})
    open_flag_page(console, key)
    expect(console.locator('[data-history-entry="55"]')).to_be_visible()
    expect(console.locator("[data-history-entry]")).to_have_count(50)

    console.get_by_role("button", name="Older versions").click()

    expect(console.locator("[data-history-entry]")).to_have_count(55)
    expect(console.locator('[data-history-entry="1"]')).to_contain_text("create")
    expect(console.get_by_role("button", name="Older versions")).to_have_count(0)


def switch_of_page(page: Page, key: str):  # noqa: ANN201
    return page.locator(f'[data-flag-page="{key}"] [data-action="toggle"]')


def test_a_flags_page_shows_its_hits_misses_and_hit_rate_from_the_cache_stats(
    console: Page, server: ConsoleServer
) -> None:
    key = server.create_flag("read")["key"]
    for _ in range(4):
        assert server.read(key).status_code == 200

    open_flag_page(console, key)
    expect(console.locator('[data-stat="hits"]')).not_to_have_text("0")
    counted = server.admin("GET", "/admin/cache/stats").json()
    mine = next(item for item in counted["flags"] if item["key"] == key)

    expect(console.locator('[data-stat="hits"]')).to_have_text(str(mine["hits"]))
    expect(console.locator('[data-stat="misses"]')).to_have_text(str(mine["misses"]))
    expect(console.locator('[data-stat="hit-rate"]')).to_have_text(f"{mine['hitRate'] * 100:.1f} %")
    assert mine["hits"] + mine["misses"] >= 4


# ---- Live ---------------------------------------------------------------------------------------------


def test_a_change_made_elsewhere_appears_in_the_list_within_two_seconds(console: Page, server: ConsoleServer) -> None:
    key = server.create_flag("live")["key"]
    expect(switch_of(console, key)).to_have_attribute("aria-checked", "true")
    expect(console.locator("[data-live]")).to_have_attribute("data-live", "on")

    began = time.monotonic()
    server.patch(key, {"enabled": False})
    left = LIVE_DEADLINE_SECONDS - (time.monotonic() - began)
    expect(switch_of(console, key)).to_have_attribute("aria-checked", "false", timeout=left * 1000)


def test_a_change_made_elsewhere_appears_on_the_flags_page_within_two_seconds(
    console: Page, server: ConsoleServer
) -> None:
    key = server.create_flag("live-page", description="before")["key"]
    open_flag_page(console, key)
    expect(console.locator('[data-history-entry="1"]')).to_be_visible()

    began = time.monotonic()
    server.patch(key, {"description": "after"})
    left = (LIVE_DEADLINE_SECONDS - (time.monotonic() - began)) * 1000
    expect(console.locator(f'[data-flag-page="{key}"] .description')).to_have_text("after", timeout=left)
    expect(console.locator('[data-history-entry="2"]')).to_be_visible(timeout=max(left, 100))
    expect(field(console, "description").locator("input")).to_have_value("after")  # no edits: the form follows


# ---- The degraded toast -----------------------------------------------------------------------------


def test_the_toast_shows_while_answers_are_degraded_and_goes_once_they_are_not(
    console: Page, server: ConsoleServer
) -> None:
    toast = console.locator('[role="status"]')
    expect(toast).to_be_hidden()
    degraded: list[str] = []
    console.on(
        "response", lambda answer: degraded.append(answer.url) if answer.headers.get("x-flags-degraded") else None
    )

    server.redis.pause()
    try:
        console.click('[data-action="refresh"]')
        expect(toast).to_have_text(DEGRADED_TEXT, timeout=15_000)
        assert degraded, "the toast showed without a degraded answer"
    finally:
        server.redis.resume()

    expect(toast).to_be_hidden(timeout=20_000)  # no action needed: the console reads again until answers are normal
    expect(toast).to_have_text("")


# ---- 360 px -------------------------------------------------------------------------------------------


def test_nothing_scrolls_sideways_at_360_px(browser: Browser, server: ConsoleServer) -> None:
    key = f"wide-{uuid.uuid4().hex[:8]}-" + "x" * 100
    long_value = "v" * 300
    rule = {
        "name": "n" * 200,
        "conditions": [{"attribute": "a" * 200, "operator": "eq", "value": long_value}],
        "variant": "on",
    }
    created = server.admin(
        "POST", "/admin/flags", json={"key": key, "enabled": True, "description": "d" * 1000, "rules": [rule]}
    )
    assert created.status_code == 201, created.text
    server.patch(key, {"description": "w" * 900})
    page = open_console(browser, server, PHONE)

    checks = {}
    expect(row(page, key)).to_be_visible()
    checks["list"] = horizontal_overflow(page)
    switch_of(page, key).click()
    checks["dialog"] = horizontal_overflow(page)
    dialog(page).locator('[data-action="cancel"]').click()
    open_flag_page(page, key)
    expect(page.locator('[data-history-entry="2"]')).to_be_visible()
    checks["flag page"] = horizontal_overflow(page)
    page.goto(f"{server.console_url}#/new")
    expect(field(page, "key")).to_be_visible()
    page.click('[data-action="add-rule"]')
    checks["new flag"] = horizontal_overflow(page)

    assert checks == {"list": 0, "dialog": 0, "flag page": 0, "new flag": 0}
    page.context.close()


def test_the_switch_fits_on_a_phone(browser: Browser, server: ConsoleServer) -> None:
    key = server.create_flag("phone-" + "y" * 60)["key"]
    page = open_console(browser, server, PHONE)

    box = switch_of(page, key).bounding_box()

    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["height"] >= 24  # a finger-sized target
    assert re.fullmatch(r"On|Off", switch_of(page, key).inner_text().strip())
    page.context.close()
