"""The 12-lead ECG in the browser: a cart's DICOM ECG stored by STOW-RS and shared with a
consultation or a chest-pain referral is drawn for the cardiologist on the standard sheet (12 labelled leads and a
lead II rhythm strip, 25 mm/s, 10 mm/mV), with when it was taken and the cart's
measurements; the zoom keeps the grid true (millimetres to CSS pixels); the consultation's
"open in the reading window" and its image preview lead to it; a tablet shows it unclipped.
Screenshots go to /tmp/shots-ecg/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from tests.conftest import Api
from tests.e2e.test_image_viewer import open_as, stow_files, study_uid_of, text
from yilian.dicom.synth import ecg_12lead

SHOTS = Path("/tmp/shots-ecg")
SHEET = ["I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6", "II"]
PAPER_MM = (262, 132)  # features/ecg-paper.js paperSize()
CSS_PX_PER_MM = 96 / 25.4

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _shots_dir() -> None:
    SHOTS.mkdir(exist_ok=True)


async def _shared_ecg(api: Api) -> tuple[str, int]:
    """A chest-pain ECG taken at the township, shared with the expert's consultation."""
    township = await api.login("township")
    data = ecg_12lead(patient={"id": "CP-ECG-1", "name": "Huang^Wei", "sex": "M",
                               "birth_date": "19580612"},
                      acquired=datetime(2024, 3, 5, 8, 12, 30))
    status, doc = await stow_files(township, [data])
    assert status == 200, doc
    study = study_uid_of(doc)
    status, items = await township.get("/api/consultations")
    case = next(c for c in items if c["question"].startswith("Post-MI patient"))
    status, body = await township.post(f"/api/consultations/{case['id']}/studies",
                                       {"study_uid": study})
    assert status == 200, body
    return study, case["id"]


async def _sheet(page: Page) -> dict[str, Any]:
    paper = page.get_by_test_id("ecg-paper").first
    await expect(paper).to_have_attribute("data-leads", ",".join(SHEET))
    return await paper.evaluate("""(el) => {
      const canvas = el.querySelector("canvas");
      const box = canvas.getBoundingClientRect();
      const scroller = el.querySelector(".ecg-scroll").getBoundingClientRect();
      return {leads: el.dataset.leads, pxPerMm: Number(el.dataset.pxPerMm),
              speed: el.dataset.speed, gain: el.dataset.gain,
              cssWidth: box.width, cssHeight: box.height, backing: canvas.width,
              scrollerWidth: scroller.width, ratio: window.devicePixelRatio,
              pageWidth: document.documentElement.scrollWidth,
              viewportWidth: window.innerWidth};
    }""")


def _grid_true(s: dict[str, Any]) -> None:
    assert s["speed"] == "25" and s["gain"] == "10"
    assert abs(s["cssWidth"] - round(PAPER_MM[0] * s["pxPerMm"])) <= 1
    assert abs(s["cssHeight"] - round(PAPER_MM[1] * s["pxPerMm"])) <= 1
    assert abs(s["backing"] - round(s["cssWidth"] * s["ratio"])) <= 2


async def test_the_cardiologist_reads_the_ecg(api: Api, new_page: Any) -> None:
    study, case = await _shared_ecg(api)
    page, _ = await open_as(api, new_page, "expert", 1366, 900)
    await page.goto(f"/#/ecg/{study}")
    await expect(page.get_by_role("heading", name=text("ecg", "title"))).to_be_visible()
    s = await _sheet(page)
    _grid_true(s)
    assert s["scrollerWidth"] >= s["cssWidth"]  # fit width: the whole sheet in view
    assert s["pageWidth"] <= s["viewportWidth"]
    await expect(page.get_by_text(text("ecg", "speed_gain", speed=25, gain=10)).first).to_be_visible()
    await expect(page.locator(".ecg-measure[data-key=heart_rate] dd")).to_contain_text(
        text("ecg", "unit_bpm", value=61))
    await expect(page.locator(".ecg-measure[data-key=qtc] dd")).to_have_text(
        text("ecg", "unit_ms", value=370))
    await expect(page.get_by_test_id("ecg-acquired")).to_contain_text("2024")
    await expect(page.get_by_test_id("ecg-acquired")).to_contain_text("08:12")
    await expect(page.get_by_text("RITMO SINUSALE", exact=False)).to_be_visible()
    await expect(page.get_by_text("Huang Wei", exact=False)).to_be_visible()
    await page.screenshot(path=str(SHOTS / "ecg-desktop-zh.png"), full_page=True)

    # real size: 1 mm of paper is 96/25.4 CSS pixels; zooming in keeps 1 mm squares
    await page.get_by_test_id("ecg-real").click()
    s = await _sheet(page)
    assert abs(s["pxPerMm"] - CSS_PX_PER_MM) < 1e-3
    _grid_true(s)
    await page.get_by_test_id("ecg-zoom-in").click()
    await page.get_by_test_id("ecg-zoom-in").click()
    await expect(page.locator(".ecg-zoom")).to_have_text("156%")
    s = await _sheet(page)
    assert abs(s["pxPerMm"] - CSS_PX_PER_MM * 1.25 ** 2) < 1e-3
    _grid_true(s)
    assert s["cssWidth"] > s["scrollerWidth"]  # larger than the window: it scrolls
    assert (await _sheet(page))["pageWidth"] <= s["viewportWidth"]  # the page itself does not
    await page.get_by_test_id("ecg-paper").screenshot(path=str(SHOTS / "ecg-zoomed.png"))
    await page.get_by_test_id("ecg-fit").click()
    assert (await _sheet(page))["cssWidth"] <= s["scrollerWidth"]

    # from the consultation: the reading window opens the ECG page, not OHIF
    await page.goto(f"/#/consultations/{case}")
    row = page.locator(f"#studies-panel li[data-study-uid='{study}']")
    async with page.context.expect_page() as opened:
        await row.get_by_test_id("open-ohif").click()
    reading = await opened.value
    await reading.wait_for_url(f"**/#/ecg/{study}")
    _grid_true(await _sheet(reading))
    await reading.close()
    # and the consultation's image preview draws it too
    await page.goto(f"/#/consultations/{case}/studies/{study}")
    await expect(page.locator(".pv-ecg [data-testid=ecg-paper]")).to_have_attribute(
        "data-leads", ",".join(SHEET))
    await page.screenshot(path=str(SHOTS / "ecg-preview.png"))
    assert page.js_errors == []  # type: ignore[attr-defined]
    await page.context.close()


async def test_the_ecg_on_a_tablet_in_english(api: Api, new_page: Any) -> None:
    study, _ = await _shared_ecg(api)
    page, _ = await open_as(api, new_page, "expert", 768, 1024, lang="en")
    await page.goto(f"/#/ecg/{study}")
    await expect(page.get_by_role("heading", name=text("ecg", "title", "en"))).to_be_visible()
    s = await _sheet(page)
    _grid_true(s)
    assert s["cssWidth"] <= s["scrollerWidth"] and s["pageWidth"] <= s["viewportWidth"]
    assert s["pxPerMm"] >= 2  # small squares of at least two CSS pixels
    await expect(page.locator(".ecg-measure[data-key=pr] dd")).to_have_text("161 ms")
    await page.screenshot(path=str(SHOTS / "ecg-tablet-en.png"), full_page=True)
    # someone the ECG is not shared with sees nothing of it
    other, _ = await open_as(api, new_page, "gdph_radiology", 768, 1024, lang="en")
    await other.goto(f"/#/ecg/{study}")
    await expect(other.get_by_text(text("ecg", "not_found", "en"))).to_be_visible()
    assert page.js_errors == [] and other.js_errors == []  # type: ignore[attr-defined]
    await page.context.close()
    await other.context.close()


async def test_the_ecg_travels_with_a_chest_pain_referral(api: Api, new_page: Any) -> None:
    """The township stores the cart's ECG and refers the chest-pain patient up with it: the
    ECG's acquisition time becomes the case's first-ECG time point, and the receiving
    cardiologist reads it drawn on the referral's page."""
    township = await api.login("township")
    now = datetime.now(UTC).replace(microsecond=0)
    contact = now - timedelta(minutes=20)
    taken = (contact + timedelta(minutes=7)).astimezone(ZoneInfo("Asia/Shanghai"))
    data = ecg_12lead(patient={"id": "CP-REF-1", "name": "Chen^Gang", "sex": "M",
                               "birth_date": "19600301"},
                      acquired=taken.replace(tzinfo=None))
    status, doc = await stow_files(township, [data])
    assert status == 200, doc
    study = study_uid_of(doc)
    status, patient = await township.post("/api/patients", {"name": "Chen Gang (陈刚)",
                                                            "sex": "male"})
    assert status == 201, patient
    status, targets = await township.get("/api/referral-targets", params={"direction": "up"})
    dianbai = next(t for t in targets if t["name"] == "Dianbai District People's Hospital")
    cardiology = next(d["id"] for d in dianbai["departments"] if d["specialty"] == "cardiology")
    status, ref = await township.post("/api/referrals", {
        "patient_id": patient["id"], "direction": "up", "to_institution_id": dianbai["id"],
        "department": cardiology, "green_channel": "chest_pain",
        "reason": "Crushing chest pain 40 min, ST elevation V1-V4",
        "onset_at": (now - timedelta(minutes=60)).isoformat(),
        "first_contact_at": contact.isoformat(), "study_uids": [study]})
    assert status == 201, ref
    ecg_point = next(m for m in ref["milestones"] if m["milestone"] == "first_ecg")
    assert ecg_point["source"] == "ecg"
    assert datetime.fromisoformat(ecg_point["at"]) == taken
    assert ref["intervals"]["contact_to_ecg"]["minutes"] == 7.0
    assert ref["intervals"]["contact_to_ecg"]["met"] is True

    page, _ = await open_as(api, new_page, "county", 1366, 900)
    await page.goto(f"/#/referrals/{ref['id']}")
    paper = page.locator("[data-testid=ecg-paper]").first
    await expect(paper).to_have_attribute("data-leads", ",".join(SHEET))
    _grid_true(await _sheet(page))
    await paper.scroll_into_view_if_needed()
    await page.screenshot(path=str(SHOTS / "ecg-chest-pain-referral.png"), full_page=True)
    # an institution the referral does not concern reads nothing of the ECG
    guilin = await api.login("guilin_doctor")
    assert (await guilin.get(f"/dicomweb/studies/{study}/metadata"))[0] == 404
    assert page.js_errors == []  # type: ignore[attr-defined]
    await page.context.close()
