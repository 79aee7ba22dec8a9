"""The client at phone and tablet width and from the keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from yilian.server.demo import DEMO_PASSWORD


async def test_keyboard_login_and_tablet_menu(new_page) -> None:
    page = await new_page(width=800, height=1100)
    await page.goto("/")
    await expect(page.get_by_label("用户名")).to_be_focused()
    await page.keyboard.type("village")
    await page.keyboard.press("Tab")
    await page.keyboard.type(DEMO_PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"#/consultations$"))

    # At tablet width the navigation folds into a menu button.
    nav = page.get_by_role("navigation", name="主导航")
    await expect(nav).to_be_hidden()
    menu = page.get_by_role("button", name="菜单")
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await nav.get_by_role("link", name="找专家").click()
    await expect(nav).to_be_hidden()
    await expect(page.locator("article.expert-card").first).to_be_visible()

    # The consultation page puts the actions first on a narrow screen.
    await page.goto("/#/consultations")
    await page.locator("tr[data-status=requested] a.id-link").first.click()
    actions = page.get_by_role("region", name="操作")
    case = page.locator("#case-title")
    assert (await actions.bounding_box())["y"] < (await case.bounding_box())["y"]
    assert page.js_errors == []


SLOW_MS = 15_000  # a screen's data on a machine shared with other test runs

# Every screen at phone (390 px) and tablet (768 px) width: the page never scrolls sideways,
# and what a finger taps is at least 40 px tall.
FITS = """() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
  wide: [...document.querySelectorAll('#view *, #topbar *')].filter((e) => {
    const r = e.getBoundingClientRect(); return r.width > 0 && r.right > window.innerWidth + 1;
  }).slice(0, 5).map((e) => `${e.tagName}.${e.className}`)})"""
SMALL_TARGETS = """() => [...document.querySelectorAll(
    '#view a.btn, #view button, #view select, #view input:not([type=checkbox]):not([type=radio]):not([type=file]),'
    + '#view .slot-chip, #view .slot-btn, #topbar button')]
  .filter((e) => { const r = e.getBoundingClientRect(); return e.offsetParent && r.height > 0 && r.height < 39.5; })
  .slice(0, 5).map((e) => `${e.tagName}.${e.className} ${e.getBoundingClientRect().height}`)"""


async def login_zh(page, username: str) -> None:  # noqa: ANN001 - a Playwright page
    """Log in with the browser in Chinese, the default language, whatever the page shows."""
    await page.context.add_init_script("localStorage.setItem('yilian.locale', 'zh-CN')")
    await page.goto("/")
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(DEMO_PASSWORD)
    await page.locator("input[name=password]").press("Enter")
    await expect(page.locator("#logout")).to_be_attached(timeout=SLOW_MS)


async def _screens(api, username: str) -> list[str]:  # noqa: ANN001 - the conftest Api helper
    """The screens this user works with, as hash routes."""
    client = await api.login(username)
    status, rows = await client.get("/api/consultations")
    assert status == 200, rows
    mine = [c for c in rows if client.user["id"] in (c["requester_id"], c["expert_id"])]
    detail = mine[0]["id"]
    call = next(c["id"] for c in mine if c["status"] in ("accepted", "in_progress"))
    status, experts = await client.get("/api/experts")
    assert status == 200, experts
    common = ["/consultations", f"/consultations/{detail}", "/experts", f"/experts/{experts[0]['id']}",
              f"/consultations/{call}/video"]
    if client.user["role"] == "specialist":
        return ["/queue", "/availability", *common]
    return ["/request", *common]


@pytest.mark.parametrize("width", [390, 768])
async def test_every_screen_fits_phones_and_tablets(new_page, api, width: int) -> None:
    page = await new_page(width=width, height=844 if width < 500 else 1024)
    await page.goto("/")
    await expect(page.locator("input[name=username]")).to_be_visible()
    assert await page.evaluate(FITS) | {"wide": []} == {"scroll": width, "inner": width, "wide": []}
    for username in ("village", "expert"):
        routes = await _screens(api, username)
        await login_zh(page, username)
        for route in routes:
            await page.goto(f"/#{route}")
            await expect(page.locator("#view h1").first).to_be_visible(timeout=SLOW_MS)
            await expect(page.locator("#view .loading")).to_have_count(0, timeout=SLOW_MS)
            fits = await page.evaluate(FITS)
            assert fits["scroll"] <= fits["inner"], (username, route, fits)
            assert await page.evaluate(SMALL_TARGETS) == [], (username, route)
        # The top bar keeps the brand and the menu button on one row; the menu opens the rest.
        menu = page.locator("#topbar .nav-toggle")
        brand = page.locator("#topbar .brand")
        assert abs((await menu.bounding_box())["y"] - (await brand.bounding_box())["y"]) < 20
        await menu.click()
        await expect(page.locator("#topbar nav")).to_be_visible()
        assert (await page.evaluate(FITS))["scroll"] <= width
        await page.locator("#logout").click()
        await expect(page.locator("input[name=username]")).to_be_visible(timeout=SLOW_MS)
    assert page.js_errors == []
