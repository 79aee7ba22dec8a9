"""More of the workflow through the browser: a specialty-queue request declined with a reason,
a cancellation, the availability editor, and a correction of a signed report."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import expect

from tests.e2e.test_consultation_flow import login
from yilian.server.demo import DEMO_PASSWORD

SHANGHAI = ZoneInfo("Asia/Shanghai")
STATUS_BADGE = ".summary-strip .badge[data-status]"


async def test_queue_request_declined_with_reason(new_page) -> None:
    doctor = await new_page()
    await login(doctor, "township")
    await doctor.get_by_role("link", name="Specialty queue request").click()
    await expect(doctor.get_by_role("heading", name="Request from a specialty queue")).to_be_visible()
    patient = doctor.get_by_role("combobox", name="Patient", exact=True)
    await patient.select_option(
        await patient.locator("option", has_text="Liang Jinlong").get_attribute("value"))
    await doctor.get_by_label("Target institution").select_option(
        label="Guangdong Provincial People's Hospital · Provincial")
    await doctor.get_by_label("Specialty / department").select_option("radiology")
    await doctor.get_by_text("Imaging read").click()
    await doctor.get_by_text("Urgent", exact=False).first.click()
    await doctor.get_by_label("Clinical question").fill("DR chest after a fall: rib fracture?")
    await doctor.get_by_role("button", name="Send request").click()
    await expect(doctor).to_have_url(re.compile(r"#/consultations/\d+$"))
    cid = int(doctor.url.rsplit("/", 1)[1])
    await expect(doctor.locator(".facts")).to_contain_text("Queue")
    await expect(doctor.locator(".summary-strip .badge.urgency-urgent")).to_be_visible()

    # The province radiologist sees it in the queue and declines it.
    radiologist = await new_page()
    await login(radiologist, "gdph_radiology")
    row = radiologist.locator(f"#q-wait ~ div tr[data-id='{cid}']")
    await expect(row).to_contain_text("Liang Jinlong")
    await row.get_by_role("button", name="Decline").click()
    dialog = radiologist.get_by_role("dialog")
    await dialog.get_by_role("button", name="Decline").click()  # empty reason: refused
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Reason").fill("Please attach the DR study; no images were shared.")
    await dialog.get_by_role("button", name="Decline").click()
    await expect(dialog).to_be_hidden()
    await expect(radiologist.locator(f"tr[data-id='{cid}']")).to_have_count(0)

    await doctor.reload()
    await expect(doctor.locator(STATUS_BADGE)).to_have_text(re.compile("Declined"))
    await expect(doctor.locator(".timeline li[data-status=declined] .tl-note")).to_have_text(
        "Please attach the DR study; no images were shared.")
    assert doctor.js_errors == [] and radiologist.js_errors == []


async def test_requester_cancels_with_reason(new_page) -> None:
    doctor = await new_page()
    await login(doctor, "village")
    row = doctor.locator("tr[data-status=requested]").first
    await row.locator("a.id-link").click()
    await doctor.get_by_role("button", name="Cancel request").click()
    dialog = doctor.get_by_role("dialog")
    await dialog.get_by_label("Reason for cancelling").fill("Symptoms resolved; patient declined.")
    await dialog.get_by_role("button", name="Cancel consultation").click()
    await expect(doctor.locator(STATUS_BADGE)).to_have_text(re.compile("Cancelled"))
    await expect(doctor.get_by_role("button", name="Cancel request")).to_have_count(0)
    await expect(doctor.locator(".facts")).to_contain_text("Symptoms resolved; patient declined.")


def _quiet_weekday() -> datetime:
    """A weekday 4–9 days ahead (after the demo's booked slots, before its leave), 09:00 CST."""
    day = datetime.now(SHANGHAI).replace(hour=9, minute=0, second=0, microsecond=0)
    day += timedelta(days=4)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


async def test_expert_blocks_a_morning_in_the_availability_editor(new_page) -> None:
    expert = await new_page()
    await login(expert, "expert")
    await expert.get_by_role("link", name="Availability").click()
    await expect(expert.locator(".rule-row")).to_have_count(10)
    existing = await expert.locator(".exception-row").count()
    await expert.get_by_role("button", name="+ Add exception").click()
    row = expert.locator(".exception-row").nth(existing)
    start = _quiet_weekday()
    await row.get_by_label("Kind").select_option("leave")
    await row.get_by_label("From").fill(start.strftime("%Y-%m-%dT%H:%M"))
    await row.get_by_label("Until").fill((start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    await row.get_by_label("Note").fill("Teaching rounds at Maoming")
    await expert.get_by_role("button", name="Save availability").click()
    day_row = expert.locator(f".preview tr[data-day='{start.date().isoformat()}']")
    await expect(day_row.locator(".count-blocked")).to_have_text("6")
    await expect(day_row.locator(".count-free")).to_have_text("5")

    # Saved on the server: a fresh load shows the exception.
    await expert.reload()
    await expect(expert.locator(".exception-row")).to_have_count(existing + 1)
    notes = [await n.input_value() for n in await expert.locator(".exception-row input[name=note]").all()]
    assert "Teaching rounds at Maoming" in notes, notes
    assert expert.js_errors == []


async def test_expert_corrects_a_signed_report_and_keeps_the_old_version(new_page) -> None:
    expert = await new_page()
    await login(expert, "expert")
    await expert.get_by_role("link", name="Consultations").first.click()
    await expert.get_by_role("tab", name="Completed").click()
    await expert.locator("tr[data-status=completed] a.id-link").first.click()
    await expect(expert.locator(".report-current .badge")).to_have_text("Signed")
    old = await expert.locator(".report-current [data-field=impression]").inner_text()
    await expert.get_by_role("button", name="Write a correction").click()
    await expert.get_by_label("Impression").fill("Essential hypertension, grade 2; "
                                                "secondary causes excluded.")
    await expert.get_by_role("button", name="Sign report").click()
    await expert.get_by_role("dialog").get_by_label("Your password").fill(DEMO_PASSWORD)
    await expert.get_by_role("dialog").get_by_role("button", name="Sign", exact=True).click()
    await expect(expert.locator(".report-meta")).to_contain_text("Version 2 · signed by Prof. Zhou Jianhua (周建华) on")
    await expect(expert.locator(".report-current")).to_contain_text("corrects version 1")
    await expect(expert.locator(".report-current [data-field=impression]")).to_have_text(
        "Essential hypertension, grade 2; secondary causes excluded.")
    earlier = expert.locator(".report-history details[data-version='1']")
    await earlier.locator("summary").click()
    await expect(earlier.locator("[data-field=impression]")).to_have_text(old)
    assert expert.js_errors == []
