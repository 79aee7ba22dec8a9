"""The client at tablet width and from the keyboard."""

from __future__ import annotations

import re

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
