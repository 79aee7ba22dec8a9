"""Accounts in the browser: an administrator creates an account; its user logs in, is made to
choose a password, then lands in the app; "my account" lists and ends sessions; a coordinator
is offered user administration but no audit log, a clinician neither."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import expect

from tests.e2e.test_consultation_flow import login


async def test_a_created_user_chooses_a_password_then_lands_in_the_app(new_page, api) -> None:
    admin = await new_page()
    await login(admin, "admin")
    await admin.locator(".nav").get_by_role("link", name="Users").click()
    await expect(admin.get_by_role("heading", name="User accounts")).to_be_visible()
    await expect(admin.locator("tr[data-username='guilin_doctor']")).to_have_count(1)
    await admin.get_by_role("link", name="New account").click()
    # the form replaces the list (whose cells carry "Username" labels on phones): wait for it
    await expect(admin).to_have_url(re.compile(r"#/users/new$"))
    await expect(admin.get_by_label("Username")).to_have_count(1)
    await admin.get_by_label("Username").fill("zhangmin")
    await admin.get_by_label("Name", exact=True).fill("Zhang Min")
    await admin.get_by_label("Role").select_option("township_doctor")
    await admin.get_by_label("Institution").select_option(label="Shalang Town Central Health Centre")
    await admin.get_by_label("Temporary password").fill("1234567890")
    await admin.get_by_role("button", name="Create account").click()
    # The server's policy speaks in the user's language.
    await expect(admin.locator(".alert-error")).to_contain_text("among the first any attacker tries")
    await admin.get_by_label("Temporary password").fill("welcome-shalang-7")
    await admin.get_by_role("button", name="Create account").click()
    await expect(admin.get_by_role("heading", name="Account: Zhang Min")).to_be_visible()
    await expect(admin.locator("[data-state='must_change']")).to_have_count(1)
    assert admin.js_errors == []

    doctor = await new_page()
    await doctor.context.add_init_script("localStorage.setItem('yilian.locale', 'en')")
    await doctor.goto("/")
    await doctor.get_by_label("Username").fill("zhangmin")
    await doctor.get_by_label("Password").fill("welcome-shalang-7")
    await doctor.get_by_role("button", name="Log in").click()
    await expect(doctor).to_have_url(re.compile(r"#/password$"))
    await expect(doctor.get_by_role("heading", name="Choose your password")).to_be_visible()
    # Nowhere else to go until the password is chosen.
    await doctor.goto("/#/consultations")
    await expect(doctor).to_have_url(re.compile(r"#/password$"))
    await doctor.get_by_label("Temporary password").fill("welcome-shalang-7")
    await doctor.get_by_label("New password", exact=True).fill("my-own-secret-2026")
    await doctor.get_by_label("New password again").fill("my-own-secret-2026")
    await doctor.get_by_role("button", name="Save and continue").click()
    await expect(doctor).to_have_url(re.compile(r"#/consultations$"))
    await expect(doctor.locator("#logout")).to_be_visible()

    # My account: this session and the admin-side view agree; an older session can be ended.
    other = await api.login("zhangmin", "my-own-secret-2026")
    await doctor.locator(".who-text").click()
    await expect(doctor.get_by_role("heading", name="My account")).to_be_visible()
    await expect(doctor.locator("tr[data-current='true']")).to_have_count(1)
    await expect(doctor.locator("tr[data-current='false']")).to_have_count(1)
    await doctor.locator("tr[data-current='false']").get_by_role("button", name="End").click()
    await expect(doctor.locator("tr[data-current='false']")).to_have_count(0)
    assert (await other.get("/api/me"))[0] == 401
    assert doctor.js_errors == []


async def test_each_role_is_offered_what_it_may_do(new_page) -> None:
    coordinator = await new_page()
    await login(coordinator, "coordinator")
    nav = coordinator.locator(".nav")
    await expect(nav.get_by_role("link", name="Users")).to_be_visible()
    await expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    await coordinator.goto("/#/users/new")
    # Roles up to their own; institutions of their alliance only.
    options = await coordinator.get_by_label("Role").locator("option").all_inner_texts()
    assert "Administrator" not in options and "Coordinator" in options
    institutions = await coordinator.get_by_label("Institution").locator("option").all_inner_texts()
    assert not any("Guilin" in name for name in institutions), institutions
    # An administrator's account in their alliance: shown, not changeable.
    await coordinator.goto("/#/users?q=admin")
    await coordinator.locator("tr[data-username='admin']").get_by_role("link").click()
    await expect(coordinator.get_by_text("You may view this account but not change it")).to_be_visible()
    await expect(coordinator.get_by_role("button", name="Save")).to_have_count(0)
    await coordinator.goto("/#/audit")
    await expect(coordinator).not_to_have_url(re.compile(r"#/audit$"))

    village = await new_page()
    await login(village, "village")
    await expect(village.locator(".nav").get_by_role("link", name="Users")).to_have_count(0)
    await village.goto("/#/users")
    await expect(village).to_have_url(re.compile(r"#/consultations$"))

    admin = await new_page()
    await login(admin, "admin")
    await admin.locator(".nav").get_by_role("link", name="Audit log").click()
    await expect(admin.get_by_role("heading", name="Audit log")).to_be_visible()
    await admin.get_by_label("Action").select_option("login")
    await admin.get_by_role("button", name="Search").click()
    await expect(admin.locator("tr[data-action='login']").first).to_be_visible()
    async with admin.expect_download() as download:
        await admin.get_by_role("button", name="Export CSV").click()
    path = await (await download.value).path()
    assert Path(path).read_bytes()[:3] == b"\xef\xbb\xbf"  # noqa: ASYNC240 - a small file
    assert coordinator.js_errors == [] and village.js_errors == [] and admin.js_errors == []
