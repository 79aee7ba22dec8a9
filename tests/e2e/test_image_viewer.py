"""The image viewer through the browser: the expert opens the CT shared with a consultation,
scrolls through the series and changes window/level; then pans the whole-slide image."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.e2e.test_consultation_flow import login

IMAGE_SHOWN = """(sel) => { const i = document.querySelector(sel);
  return !!i && i.complete && i.naturalWidth > 0; }"""


async def test_expert_reads_the_shared_ct_and_slide(new_page, api) -> None:
    expert_api = await api.login("expert")
    status, rows = await expert_api.get("/api/consultations", params={"status": "in_progress"})
    assert status == 200, rows
    case = next(c for c in rows if len(c["study_uids"]) >= 2)

    page = await new_page()
    await login(page, "expert")
    await page.goto(f"/#/consultations/{case['id']}")
    studies = page.locator("#studies-panel li")
    await expect(studies).to_have_count(len(case["study_uids"]))
    ct = page.locator("#studies-panel li", has_text="CT")
    await expect(ct.locator(".study-about")).to_contain_text("images")
    await ct.get_by_role("link", name="Open viewer").click()
    await expect(page).to_have_url(re.compile(r"/studies/[0-9.]+$"))

    await expect(page.locator(".series-btn")).to_contain_text("Chest axial")
    counter = page.locator(".viewer-counter")
    await expect(counter).to_have_text("Image 7 / 12")
    await page.wait_for_function(IMAGE_SHOWN, arg=".dicom-image")
    first = await page.locator(".viewer-stage").get_attribute("data-loaded")

    stage = page.locator(".viewer-stage")
    await stage.focus()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    await expect(counter).to_have_text("Image 9 / 12")
    await page.keyboard.press("End")
    await expect(counter).to_have_text("Image 12 / 12")
    await expect(stage).to_have_attribute("data-index", "11")
    assert await stage.get_attribute("data-loaded") != first

    await page.get_by_label("Window preset").select_option("mediastinum")
    await expect(page.locator(".viewer-wl")).to_have_text("W 400 / L 40")
    await expect(stage).to_have_attribute("data-loaded", re.compile(r"window=40%2C400$"))
    await page.wait_for_function(IMAGE_SHOWN, arg=".dicom-image")

    # The whole-slide image of the same consultation: tiles load, zoom changes the level.
    await page.goto(f"/#/consultations/{case['id']}")
    await page.locator("#studies-panel li", has_text="SM").get_by_role("link", name="Open viewer").click()
    await page.wait_for_function(IMAGE_SHOWN, arg=".slide-tile")
    level = page.get_by_role("combobox", name="Magnification 放大倍率")
    await expect(level).to_have_value("0")
    await page.get_by_role("button", name="Zoom in").click()
    await expect(level).to_have_value("1")
    await page.wait_for_function(IMAGE_SHOWN, arg=".slide-tile")
    assert page.js_errors == []


async def test_doctor_uploads_a_study_and_shares_it(new_page) -> None:
    from pydicom.data import get_testdata_file

    page = await new_page()
    await login(page, "village")
    await page.locator("tr[data-status=requested] a.id-link").first.click()
    panel = page.locator("#studies-panel")
    before = await panel.locator("li").count()
    await panel.get_by_label("DICOM files from this computer").set_input_files(
        get_testdata_file("CT_small.dcm"))
    await panel.get_by_role("button", name="Upload and share").click()
    await expect(panel.locator("li")).to_have_count(before + 1)
    uploaded = panel.locator("li").last
    await expect(uploaded.locator(".study-about")).to_contain_text("CT")
    await uploaded.get_by_role("link", name="Open viewer").click()
    await expect(page.locator(".viewer-counter")).to_have_text("Image 1 / 1")
    await page.wait_for_function(IMAGE_SHOWN, arg=".dicom-image")
    assert page.js_errors == []
