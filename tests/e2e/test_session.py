"""Sessions in the browser: logout revokes the token; a token revoked elsewhere sends the user
back to the login screen with a notice; pages need a login."""

from __future__ import annotations

import re

from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from playwright.async_api import expect

from tests.e2e.test_consultation_flow import login


async def test_logout_revokes_the_token(new_page, api) -> None:
    page = await new_page()
    await login(page, "village")
    token = await page.evaluate("sessionStorage.getItem('yilian.token')")
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('yilian.token')") is None
    api.token = token
    status, body = await api.get("/api/me")
    assert status == 401, body

    await page.goto("/#/consultations")
    await expect(page).to_have_url(re.compile(r"#/login$"))


async def test_revoked_session_returns_to_login_with_a_notice(new_page, api) -> None:
    page = await new_page()
    await login(page, "expert")
    api.token = await page.evaluate("sessionStorage.getItem('yilian.token')")
    status, _ = await api.post("/api/auth/logout")
    assert status == 204
    # The next request finds the token revoked: the click's, or one the home screen still had
    # in flight (then the screen has already gone, link and all, to the login form).
    try:
        await page.get_by_role("link", name="Consultations").first.click(timeout=3000)
    except PlaywrightTimeoutError:
        pass
    await expect(page.get_by_role("status").filter(has_text="Your session has ended")).to_be_visible()
    await expect(page.get_by_label("Username")).to_be_visible()
    assert page.js_errors == []
