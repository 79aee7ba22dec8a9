"""Uploads and the study picker through the browser: 40 files sent one STOW-RS request each,
with per-file and overall progress to 100% and the study shared; a broken file among them gets
its own refusal while the rest land; cancel stops mid-way and sends no more; the picker
attaches a stored study without typing its UID (in the consultation and the request form)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pydicom
import pytest
from playwright.async_api import Page, expect

from tests.conftest import Api, with_settings
from tests.e2e.test_image_viewer import (
    open_as,
    own_open_case,
    stow_files,
    study_uid_of,
    tall_dr,
    text,
)
from yilian.dicom.synth import ct_series
from yilian.server.core.settings import Settings

# Progress values of every <progress> as they change (the value attribute reflects the property).
WATCH_PROGRESS = """() => {
  window.__progress = { overall: [], files: [] };
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target;
      if (el.tagName !== "PROGRESS") continue;
      const v = Number(el.getAttribute("value"));
      if (el.dataset.testid === "upload-overall") window.__progress.overall.push(v);
      else window.__progress.files.push(v);
    }
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["value"] });
}"""


def ct_payloads(count: int, patient_id: str) -> tuple[list[dict[str, Any]], str]:
    """``count`` CT slices as files for an <input type=file>, and their Study Instance UID."""
    files = ct_series(count, 256, patient={"name": "Upload^Test", "id": patient_id})
    study = pydicom.dcmread(io.BytesIO(files[0]), stop_before_pixels=True).StudyInstanceUID
    return [{"name": f"IM{i + 1:04d}.dcm", "mimeType": "application/dicom", "buffer": f}
            for i, f in enumerate(files)], study


async def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """Slow this page's uploads (Chromium's network emulation), so progress can be seen."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": bytes_per_second})


async def instance_count(who: Api, study: str) -> int:
    async with who.http.get(who.url(f"/dicomweb/studies/{study}/instances"),
                            headers=who.headers({"Accept": "application/dicom+json"})) as resp:
        if resp.status == 404:
            return 0
        assert resp.status == 200, await resp.text()
        return len(await resp.json(content_type=None))


async def test_forty_files_with_one_broken_show_progress_and_the_study_is_shared(new_page, api) -> None:
    files, study = ct_payloads(39, "UP-40")
    files.insert(17, {"name": "broken.dcm", "mimeType": "application/dicom",
                      "buffer": b"this is a scanned report, not DICOM\n" * 40})
    page, village = await open_as(api, new_page, "village")
    case = await own_open_case(village)
    await page.goto(f"/#/consultations/{case['id']}")
    panel = page.locator("#studies-panel")
    before = await panel.locator("li[data-study-uid]").count()
    await throttle_uploads(page, 1_500_000)
    await page.evaluate(WATCH_PROGRESS)
    await panel.get_by_test_id("upload-files").set_input_files(files)
    await panel.get_by_test_id("upload-start").click()

    upload = panel.get_by_test_id("upload")
    await expect(upload.get_by_test_id("upload-file")).to_have_count(40)
    await expect(upload).to_have_attribute("data-state", "done", timeout=60_000)
    await expect(panel.locator(f"li[data-study-uid='{study}']")).to_have_count(1)
    await expect(panel.locator("li[data-study-uid]")).to_have_count(before + 1)

    # Every file has its own bar; all reach 100%, and so does the overall one.
    await expect(upload.get_by_test_id("upload-overall")).to_have_attribute("value", "100")
    rows = upload.get_by_test_id("upload-file")
    assert await rows.evaluate_all("(rs) => rs.map((r) => r.querySelector('progress').value)") == [100] * 40
    await expect(upload.locator("[data-testid=upload-file][data-state=stored]")).to_have_count(39)
    broken = upload.locator("[data-testid=upload-file][data-state=refused]")
    await expect(broken).to_have_count(1)
    await expect(broken).to_have_attribute("data-name", "broken.dcm")
    await expect(broken.locator(".upload-status")).to_have_text(text("studies", "refused_not_dicom"))
    await expect(upload.locator(".upload-summary")).to_have_text(
        text("studies", "upload_done_some_refused", stored=39, refused=1))
    seen = await page.evaluate("() => window.__progress")
    assert any(0 < v < 100 for v in seen["overall"]), seen["overall"]
    assert any(0 < v < 100 for v in seen["files"]), "no file showed partial progress"
    assert seen["overall"] == sorted(seen["overall"]), "the overall bar went backwards"
    await page.screenshot(path="/tmp/preview-upload-1366.png", full_page=True)

    # The server holds the 39 good slices, shared with the consultation.
    assert await instance_count(village, study) == 39
    status, body = await village.get(f"/api/consultations/{case['id']}")
    assert status == 200 and study in body["study_uids"], body
    assert page.js_errors == []


async def test_cancel_stops_the_upload_and_sends_no_more(new_page, api) -> None:
    files, study = ct_payloads(40, "UP-CANCEL")
    page, village = await open_as(api, new_page, "village", 390, 844)
    case = await own_open_case(village)
    await page.goto(f"/#/consultations/{case['id']}")
    panel = page.locator("#studies-panel")
    await throttle_uploads(page, 250_000)
    await panel.get_by_test_id("upload-files").set_input_files(files)
    await panel.get_by_test_id("upload-start").click()
    upload = panel.get_by_test_id("upload")
    stored = upload.locator("[data-testid=upload-file][data-state=stored]")
    await expect(stored.nth(1)).to_be_attached(timeout=30_000)
    await page.screenshot(path="/tmp/preview-upload-390.png", full_page=True)
    await upload.get_by_test_id("upload-cancel").click()
    await expect(upload).to_have_attribute("data-state", "cancelled")

    done = await stored.count()
    cancelled = await upload.locator("[data-testid=upload-file][data-state=cancelled]").count()
    assert done + cancelled == 40 and cancelled >= 30, (done, cancelled)
    await expect(upload.locator(".upload-summary")).to_have_text(text("studies", "upload_cancelled", stored=done))
    # Nothing more reaches the server (an abort racing a finished store may add up to the three
    # in flight), and nothing is shared.
    await asyncio.sleep(1.5)
    landed = await instance_count(village, study)
    assert done <= landed <= done + 3, (done, landed)
    await asyncio.sleep(1.5)
    assert await instance_count(village, study) == landed
    status, body = await village.get(f"/api/consultations/{case['id']}")
    assert status == 200 and study not in body["study_uids"], body
    assert page.js_errors == []


async def test_the_picker_attaches_a_stored_study_without_typing_its_uid(new_page, api) -> None:
    village = await api.login("village")
    status, doc = await stow_files(village, [tall_dr(400, 300, {"name": "Picker^Test", "id": "PK-77",
                                                                 "study_date": "20261120"})])
    assert status == 200, doc
    uid = study_uid_of(doc)
    case = await own_open_case(village)
    page, _ = await open_as(api, new_page, "village")
    await page.goto(f"/#/consultations/{case['id']}")
    panel = page.locator("#studies-panel")
    await panel.get_by_test_id("attach-study").click()
    picker = page.get_by_test_id("study-picker")
    await expect(picker).to_be_visible()
    # Newest received first: the study just sent heads the list before any search.
    await expect(picker.locator("tbody tr").first).to_have_attribute("data-study-uid", uid)

    # A search that finds nothing says so; a typed UID that is not one is refused.
    await picker.get_by_label(text("studies", "picker_date_to")).fill("2001-01-01")
    await picker.get_by_role("button", name=text("studies", "picker_search")).click()
    await expect(picker.locator(".picker-results")).to_have_text(text("studies", "picker_none"))
    await picker.locator("summary").click()
    await picker.get_by_label(text("studies", "picker_uid_label")).fill("1.2.abc")
    await picker.get_by_role("button", name=text("studies", "picker_uid_add")).click()
    await expect(picker.locator(".field-error")).to_have_text(text("studies", "uid_invalid"))
    await expect(picker).to_be_visible()

    await picker.get_by_label(text("studies", "picker_date_to")).fill("")
    await picker.get_by_label(text("studies", "picker_patient_name")).fill("picker test")
    await picker.get_by_role("button", name=text("studies", "picker_search")).click()
    row = picker.locator(f"tbody tr[data-study-uid='{uid}']")
    await expect(picker.locator("tbody tr")).to_have_count(1)
    await expect(row).to_contain_text("PK-77")
    await expect(row).to_contain_text("2026-11-20")
    await page.screenshot(path="/tmp/preview-picker-1366.png")
    await row.get_by_test_id("pick-study").click()
    await expect(picker).to_have_count(0)
    await expect(panel.locator(f"li[data-study-uid='{uid}']")).to_have_count(1)
    status, body = await village.get(f"/api/consultations/{case['id']}")
    assert status == 200 and uid in body["study_uids"], body

    # In the request form, the picker fills the studies to share.
    await page.goto("/#/request")
    # The consultation page has an attach-study button too: wait for the request form (which
    # renders once its data is in) so the click is not on the page being left.
    form = page.locator("form.request-form")
    await expect(form).to_be_visible()
    await form.get_by_test_id("attach-study").click()
    await page.get_by_test_id("study-picker").get_by_label(text("studies", "picker_patient_id")).fill("PK-77")
    await page.get_by_test_id("study-picker").get_by_role("button", name=text("studies", "picker_search")).click()
    await page.get_by_test_id("study-picker").get_by_test_id("pick-study").click()
    await expect(page.locator(f".request-studies li[data-study-uid='{uid}']")).to_have_count(1)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.get_by_test_id("attach-study").click()
    await expect(page.get_by_test_id("study-picker").locator(f"tbody tr[data-study-uid='{uid}']")).to_contain_text(
        text("studies", "picker_attached"))
    await page.screenshot(path="/tmp/preview-picker-390.png")
    assert page.js_errors == []


class TestAboveTheUploadLimit:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        """The server takes uploads of at most 300 kB."""
        return with_settings(settings, max_upload_bytes=300_000)

    async def test_a_file_above_the_limit_is_refused_on_its_own(self, new_page, api) -> None:
        small = ct_series(1, 256, patient={"name": "Limit^Small", "id": "LIM-1"})[0]
        big = ct_series(1, 512, patient={"name": "Limit^Big", "id": "LIM-2"})[0]
        assert len(small) < 300_000 < len(big)
        page, village = await open_as(api, new_page, "village")
        case = await own_open_case(village)
        await page.goto(f"/#/consultations/{case['id']}")
        panel = page.locator("#studies-panel")
        await panel.get_by_test_id("upload-files").set_input_files([
            {"name": "big.dcm", "mimeType": "application/dicom", "buffer": big},
            {"name": "small.dcm", "mimeType": "application/dicom", "buffer": small}])
        await panel.get_by_test_id("upload-start").click()
        upload = panel.get_by_test_id("upload")
        await expect(upload).to_have_attribute("data-state", "done")
        refused = upload.locator("[data-testid=upload-file][data-state=refused]")
        await expect(refused).to_have_attribute("data-name", "big.dcm")
        await expect(refused.locator(".upload-status")).to_have_text(text("studies", "refused_too_large"))
        await expect(upload.locator("[data-testid=upload-file][data-state=stored]")).to_have_attribute(
            "data-name", "small.dcm")
        study = pydicom.dcmread(io.BytesIO(small), stop_before_pixels=True).StudyInstanceUID
        await expect(panel.locator(f"li[data-study-uid='{study}']")).to_have_count(1)
        assert page.js_errors == []


async def test_a_changed_resend_is_refused_as_a_duplicate(new_page, api) -> None:
    first, second = ct_series(2, 128, patient={"name": "Dup^Test", "id": "DUP-1"})
    village = await api.login("village")
    status, doc = await stow_files(village, [first])
    assert status == 200, doc
    changed = pydicom.dcmread(io.BytesIO(first))
    changed.PatientName = "Dup^Changed"
    buf = io.BytesIO()
    changed.save_as(buf, enforce_file_format=True)
    page, _ = await open_as(api, new_page, "village")
    case = await own_open_case(village)
    await page.goto(f"/#/consultations/{case['id']}")
    panel = page.locator("#studies-panel")
    await panel.get_by_test_id("upload-files").set_input_files([
        {"name": "again.dcm", "mimeType": "application/dicom", "buffer": buf.getvalue()},
        {"name": "new.dcm", "mimeType": "application/dicom", "buffer": second}])
    await expect(panel.locator(".upload-form")).to_contain_text(text("studies", "chosen_count", n=2))
    await panel.get_by_test_id("upload-start").click()
    upload = panel.get_by_test_id("upload")
    await expect(upload).to_have_attribute("data-state", "done")
    refused = upload.locator("[data-testid=upload-file][data-state=refused]")
    await expect(refused).to_have_attribute("data-name", "again.dcm")
    await expect(refused.locator(".upload-status")).to_have_text(text("studies", "refused_duplicate"))
    await expect(upload.locator("[data-testid=upload-file][data-state=stored]")).to_have_attribute("data-name", "new.dcm")
    assert page.js_errors == []
