"""A green-channel stroke referral through the browser: the township doctor raises it in the
referral form; the county hospital's on-call neurologist, whose inbox is already open, sees the
alert and the new referral without reloading, accepts, records the door and needle times, and
the referral's timeline shows door-to-needle against its 60-minute target. Screenshots of each
step go to /tmp/shots-refweb/ (or YILIAN_SHOTS)."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_consultation_flow import login

SHOTS = Path(os.environ.get("YILIAN_SHOTS", "/tmp/shots-refweb"))
SHANGHAI = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.slow


async def shot(page: Page, name: str) -> None:
    # Playwright makes the folder when it is missing.
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def local_input(at: datetime) -> str:
    """The value a datetime-local field takes for this instant (Beijing time)."""
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


async def test_stroke_referral_reaches_the_open_on_call_page_and_runs_the_clock(new_page, api) -> None:
    # The county doctor is on call at the county hospital's neurology now (the coordinator's
    # roster: added unless the demo's rotation already has them there at this hour).
    coordinator = await api.login("coordinator")
    county = await api.login("county")
    township_api = await api.login("township")
    status, targets = await township_api.get("/api/referral-targets", params={"direction": "up"})
    assert status == 200, targets
    dianbai = next(i for i in targets if i["id"] == county.user["institution_id"])
    neurology = next(d["id"] for d in dianbai["departments"] if d["specialty"] == "neurology")
    now = datetime.now(SHANGHAI)
    status, shifts = await coordinator.get("/api/on-call", params={
        "department_id": str(neurology), "from": now.isoformat(),
        "to": (now + timedelta(minutes=1)).isoformat()})
    assert status == 200, shifts
    if county.user["id"] not in {s["user_id"] for s in shifts if s["now"]}:
        status, shift = await coordinator.post("/api/on-call", {
            "department_id": neurology, "user_id": county.user["id"],
            "start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=7)).isoformat()})
        assert status == 201, shift
    status, targets = await township_api.get("/api/referral-targets", params={"direction": "up"})
    on_call = next(d["on_call_now"] for i in targets if i["id"] == dianbai["id"]
                   for d in i["departments"] if d["id"] == neurology)
    status, green = await county.get("/api/referrals", params={
        "box": "incoming", "open": "true", "green_channel": "any"})
    assert status == 200, green

    # The on-call doctor's inbox is open before anything happens.
    doctor = await new_page()
    await login(doctor, "county")
    await doctor.goto("/#/referrals?box=incoming")
    await expect(doctor.get_by_role("heading", name="Referrals", exact=True)).to_be_visible()
    await expect(doctor.locator("#view .loading")).to_have_count(0)
    await doctor.evaluate("window.__stillTheSamePage = true")
    await shot(doctor, "01-county-inbox-before")

    # The township doctor refers a new stroke patient in the form.
    township = await new_page()
    await login(township, "township")
    await township.get_by_role("link", name="Referrals").first.click()
    await township.get_by_role("link", name="New referral").first.click()
    await expect(township.get_by_role("heading", name="Refer a patient", exact=True)).to_be_visible()
    await township.get_by_text("Register new patient").click()
    await township.get_by_label("Full name").fill("Wu Guoping (吴国平)")
    await township.get_by_label("Sex").select_option("male")
    await township.get_by_label("Date of birth").fill("1958-06-02")
    institution = township.get_by_label("Receiving institution")
    await expect(institution.locator("option", has_text="Dianbai")).to_have_count(1)
    label = await institution.locator("option", has_text="Dianbai").inner_text()
    await institution.select_option(label=label)
    await township.get_by_label("Department").select_option(str(neurology))
    await expect(township.locator(".referral-form")).to_contain_text(f"On call now: {on_call}.")
    await township.locator(".gc-tile label", has_text="Stroke").click()
    onset = now - timedelta(minutes=80)
    await township.get_by_label("Symptom onset (last known well)").fill(local_input(onset))
    await township.get_by_label("Reason for referral").fill(
        "Sudden right-sided weakness and aphasia, suspected acute ischaemic stroke; no CT here.")
    await township.get_by_label("Patient summary").fill("BP 172/96, HR 90, GCS 14, NIHSS 9. Glucose 6.4.")
    # The township's CT goes with the referral, picked from the stored studies (no UID typed).
    await township.get_by_test_id("attach-study").click()
    ct_row = township.get_by_test_id("study-picker").locator("tbody tr").filter(
        has=township.locator("td", has_text=re.compile(r"^CT$")))
    await ct_row.first.get_by_test_id("pick-study").click()
    picked = township.locator(".ref-studies li[data-study-uid]")
    await expect(picked).to_have_count(1)
    study_uid = await picked.get_attribute("data-study-uid")
    await shot(township, "02-township-form")
    await township.get_by_role("button", name="Send referral").click()
    await expect(township).to_have_url(re.compile(r"#/referrals/\d+$"))
    rid = int(township.url.rsplit("/", 1)[1])
    await expect(township.locator(".ref-hero .ref-status")).to_have_attribute("data-status", "requested")
    await shot(township, "03-township-sent")

    # The on-call doctor's open page shows the alert and the referral, without a reload.
    banner = doctor.locator(".urgent-banner", has_text=f"#{rid}")  # its number, no clinical text
    await expect(banner).to_be_visible()
    card = doctor.locator(f"article.ref-card[data-id='{rid}']")
    await expect(card).to_be_visible()
    await expect(card.locator(".green-badge")).to_contain_text("Stroke")
    await expect(card.locator(".ref-clock-time")).to_have_text(re.compile(r"^\d+:\d\d$"))
    await expect(doctor.locator('.nav a[href="#/referrals"] .nav-count')).to_have_text(str(len(green) + 1))
    assert await doctor.evaluate("window.__stillTheSamePage === true")
    await shot(doctor, "04-county-alert")

    # Accept; the patient is at the door; CT, then the needle, each with one tap.
    await banner.get_by_role("button", name="Open").click()
    await expect(doctor).to_have_url(re.compile(rf"#/referrals/{rid}$"))
    await expect(banner).to_have_count(0)
    await doctor.get_by_role("button", name="Accept", exact=True).click()
    await expect(doctor.locator(".ref-hero .ref-status")).to_have_attribute("data-status", "accepted")
    shared = doctor.locator(f".ref-study-list li[data-study-uid='{study_uid}']")
    await expect(shared.locator(".study-about")).to_contain_text("CT")  # readable by the receiving team
    door = doctor.locator(".ms-row.ms-next[data-milestone='door']")  # the next point is the big one
    await door.get_by_test_id("record-door").click()
    await expect(doctor.locator(".ref-hero .ref-status")).to_have_attribute("data-status", "arrived")
    await expect(doctor.locator(".ref-clock-big .ref-clock-label")).to_have_text("Since door")
    await doctor.get_by_test_id("record-ct_done").click()
    await expect(doctor.locator(".ms-row[data-milestone='ct_done']")).to_have_class(re.compile("ms-done"))
    await doctor.get_by_test_id("record-needle").click()
    await expect(doctor.locator(".ms-row[data-milestone='needle']")).to_have_class(re.compile("ms-done"))

    # The family remembers the onset better: a correction needs a reason and keeps the old time.
    await doctor.locator(".ms-row[data-milestone='onset']").get_by_role("button", name="Correct").click()
    dialog = doctor.get_by_role("dialog")
    earlier = onset - timedelta(minutes=25)
    await dialog.get_by_label("Time (Beijing time)").fill(local_input(earlier))
    await dialog.get_by_role("button", name="Save correction").click()
    reason = dialog.get_by_label("Reason for the correction")
    await expect(dialog).to_be_visible()  # no reason given: not sent
    assert await reason.evaluate("el => el.validity.valueMissing")
    await reason.fill("His wife last saw him well 25 minutes earlier.")
    await dialog.get_by_role("button", name="Save correction").click()
    await expect(dialog).to_be_hidden()
    onset_row = doctor.locator(".ms-row[data-milestone='onset']")
    await expect(onset_row.locator("s.ms-old-value")).to_have_text(onset.strftime("%H:%M"))
    await expect(onset_row.locator("time")).to_have_text(earlier.strftime("%H:%M"))

    # The timeline shows door-to-needle against its 60-minute target, met.
    needle = doctor.locator(".ref-timeline li[data-milestone='needle']")
    chip = needle.locator(".iv-chip", has_text="Door to needle")
    await expect(chip).to_contain_text("/ 60 min")
    await expect(chip).to_have_class(re.compile("iv-ok"))
    await expect(chip.locator(".iv-mark")).to_have_text("✓")
    assert 0 <= float(await chip.locator(".iv-minutes").inner_text()) < 60
    await expect(doctor.locator(".ref-timeline li[data-milestone='onset']:not(.tl-superseded)")).to_contain_text("His wife last saw him")
    await expect(doctor.locator(".iv-panel li[data-interval='door_to_puncture'] .iv-chip")).to_have_class(
        re.compile("iv-running"))
    await expect(doctor.locator(".toast")).to_have_count(0, timeout=10_000)
    await shot(doctor, "05-county-door-to-needle")

    # The referring doctor's page followed along, also without a reload.
    await expect(township.locator(".ref-hero .ref-status")).to_have_attribute("data-status", "arrived")
    await expect(township.locator(".iv-panel li[data-interval='door_to_needle']")).to_contain_text("/ 60 min")
    await expect(township.locator(".toast")).to_have_count(0, timeout=10_000)
    await shot(township, "06-township-followed")
    assert doctor.js_errors == [] and township.js_errors == []


async def test_refer_from_a_consultation_and_back_down_to_a_follow_up(new_page, api) -> None:
    village = await api.login("village")
    status, rows = await village.get("/api/consultations")
    assert status == 200, rows
    consultation = next(c for c in rows if c["requester_id"] == village.user["id"])

    # The village doctor refers the consultation's patient up from the consultation's page.
    doctor = await new_page()
    await login(doctor, "village")
    await doctor.set_viewport_size({"width": 390, "height": 844})  # the village doctor's phone
    await doctor.goto(f"/#/consultations/{consultation['id']}")
    await doctor.get_by_role("link", name="Refer patient").click()
    await expect(doctor.get_by_role("heading", name="Refer a patient", exact=True)).to_be_visible()
    ticked = doctor.locator(f".ref-consults li[data-consultation='{consultation['id']}'] input")
    await expect(ticked).to_be_checked()
    assert await doctor.locator("select[name=patient_id]").input_value() == str(consultation["patient_id"])
    institution = doctor.get_by_label("Receiving institution")
    label = await institution.locator("option", has_text="Dianbai").inner_text()
    await institution.select_option(label=label)
    await doctor.get_by_label("Reason for referral").fill("Needs echocardiography and a cardiology review.")
    await shot(doctor, "11-village-form-phone")
    await doctor.get_by_role("button", name="Send referral").click()
    await expect(doctor).to_have_url(re.compile(r"#/referrals/\d+$"))
    up_id = int(doctor.url.rsplit("/", 1)[1])
    await expect(doctor.locator(".ms-panel")).to_have_count(0)  # an ordinary referral
    await expect(doctor.locator(f"li[data-consultation='{consultation['id']}'] a")).to_have_attribute(
        "href", f"#/consultations/{consultation['id']}")
    fits = await doctor.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert fits
    await shot(doctor, "12-village-referral-phone")

    # The county doctor accepts it, sees the patient back to health, and refers them down.
    county = await api.login("county")
    for action in ("accept", "arrive", "complete"):
        status, body = await county.post(f"/api/referrals/{up_id}/{action}")
        assert status == 200, body
    status, patient = await county.post("/api/patients", {"name": "Liu Meifang (刘美芳)", "sex": "female"})
    assert status == 201, patient
    due = datetime.now(SHANGHAI) + timedelta(days=2)
    status, down = await county.post("/api/referrals", {
        "patient_id": patient["id"], "direction": "down", "to_institution_id": village.user["institution_id"],
        "reason": "Rehabilitation after stroke.", "follow_up_due": due.isoformat(),
        "follow_up_plan": "Blood pressure and walking; refer back if weakness returns."})
    assert status == 201, down

    # The village doctor's open inbox shows it live; they accept; the follow-up is due.
    await doctor.goto("/#/referrals?box=incoming")
    card = doctor.locator(f"article.ref-card[data-id='{down['id']}']")
    await expect(card).to_be_visible()
    await card.get_by_role("link").first.click()
    await doctor.get_by_role("button", name="Accept", exact=True).click()
    await expect(doctor.locator(".ref-hero .ref-status")).to_have_attribute("data-status", "accepted")
    await doctor.goto("/#/follow-ups")
    item = doctor.locator(".fu-card", has_text="Liu Meifang")
    await expect(item).to_contain_text("Blood pressure and walking")
    await item.get_by_role("button", name="Record outcome").click()
    dialog = doctor.get_by_role("dialog")
    await dialog.get_by_label("Outcome").fill("BP 132/80, walking unaided; continue treatment.")
    await shot(doctor, "13-village-follow-up-phone")
    await dialog.get_by_role("button", name="Save outcome").click()
    await expect(dialog).to_be_hidden()
    await expect(doctor.locator(".fu-card", has_text="Liu Meifang")).to_have_count(0)
    await doctor.get_by_role("tab", name=re.compile("Completed")).click()
    await expect(doctor.locator(".fu-card", has_text="Liu Meifang")).to_contain_text("walking unaided")
    assert doctor.js_errors == []
