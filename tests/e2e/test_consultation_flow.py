"""The consultation workflow through the browser: a village doctor books the cardiology expert,
the expert accepts, starts, reports, signs and completes, and the doctor reads the report."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from yilian.server.demo import DEMO_PASSWORD

QUESTION = "72-year-old man, palpitations and dizziness since yesterday; ECG shows AF at 130/min."
IMPRESSION = "New-onset atrial fibrillation with rapid ventricular response."


async def login(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    # These tests read English labels: the browser starts in English (Chinese is the default).
    await page.context.add_init_script(
        "localStorage.getItem('yilian.locale') || localStorage.setItem('yilian.locale', 'en')")
    await page.goto("/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#logout")).to_be_visible()


async def test_village_doctor_books_expert_who_reports_and_completes(new_page) -> None:
    doctor = await new_page()
    await login(doctor, "village")
    await expect(doctor).to_have_url(re.compile(r"#/consultations$"))

    # Find the cardiology expert and book their first free slot.
    await doctor.get_by_role("link", name="Find an expert").click()
    await doctor.get_by_label("Specialty").select_option("cardiology")
    card = doctor.locator("article.expert-card", has_text="Prof. Zhou Jianhua")
    await expect(card).to_have_count(1)
    await expect(doctor.locator("article.expert-card")).to_have_count(2)  # county internist too
    first_slot = card.locator("a.slot-chip").first
    slot_text = (await first_slot.inner_text()).strip()
    await first_slot.click()
    await expect(doctor.get_by_role("heading", name="Request a consultation")).to_be_visible()
    chosen = doctor.get_by_label("Time slot")
    assert (await chosen.input_value()) != ""

    # Register a new patient in the same form.
    await doctor.get_by_text("Register new patient").click()
    await doctor.get_by_label("Full name").fill("Zhang Guoqiang (张国强)")
    await doctor.get_by_label("Sex").select_option("male")
    await doctor.get_by_label("Date of birth").fill("1954-02-11")
    await doctor.get_by_label("Clinical question").fill(QUESTION)
    await doctor.get_by_role("button", name="Send request").click()

    await expect(doctor).to_have_url(re.compile(r"#/consultations/\d+$"))
    cid = int(doctor.url.rsplit("/", 1)[1])
    await expect(doctor.locator(".summary-strip .badge[data-status]")).to_have_text(re.compile("Requested"))
    await expect(doctor.locator(".question")).to_have_text(QUESTION)
    start_text = slot_text.split("–")[0]
    await expect(doctor.locator(".facts")).to_contain_text(start_text)

    # It is listed among the doctor's active consultations as requested.
    await doctor.get_by_role("link", name="Consultations").first.click()
    row = doctor.locator(f"tr[data-id='{cid}']")
    await expect(row).to_have_attribute("data-status", "requested")
    await expect(row).to_contain_text("Zhang Guoqiang")

    # The expert, in a separate browser context, works the queue.
    expert = await new_page()
    await login(expert, "expert")
    await expect(expert).to_have_url(re.compile(r"#/queue$"))
    queued = expert.locator(f"tr[data-id='{cid}']")
    await expect(queued).to_contain_text("Zhang Guoqiang")
    await queued.get_by_role("button", name="Accept").click()
    dialog = expert.get_by_role("dialog")
    await expect(dialog.get_by_label("Time slot")).to_have_value("")  # keep the booked slot
    await dialog.get_by_role("button", name="Accept").click()
    await expect(dialog).to_be_hidden()

    await expert.goto(f"/#/consultations/{cid}")
    await expect(expert.locator(".summary-strip .badge[data-status]")).to_have_text(re.compile("Accepted"))
    await expert.get_by_role("button", name="Start consultation").click()
    await expect(expert.locator(".summary-strip .badge[data-status]")).to_have_text(re.compile("In progress"))

    complete = expert.get_by_role("button", name="Complete consultation")
    await expect(complete).to_be_disabled()  # not before the report is signed
    await expert.get_by_label("Findings").fill("Irregularly irregular rhythm at 128/min; BP 138/84.")
    await expert.get_by_label("Impression").fill(IMPRESSION)
    await expert.get_by_label("Recommendations").fill("Rate control with metoprolol; CHA2DS2-VASc 3: "
                                                 "start anticoagulation; review in 1 week.")
    await expert.get_by_role("button", name="Save draft").click()
    await expect(expert.locator(".report-current .badge")).to_have_text("Draft")
    # The requesting doctor does not see an unsigned draft.
    await doctor.goto(f"/#/consultations/{cid}")
    await expect(doctor.locator("#report-panel")).to_contain_text("The expert is writing the report")
    await expect(doctor.locator("[data-field=impression]")).to_have_count(0)
    await expert.get_by_role("button", name="Sign report").click()
    await expert.get_by_role("dialog").get_by_label("Your password").fill(DEMO_PASSWORD)
    await expert.get_by_role("dialog").get_by_role("button", name="Sign", exact=True).click()
    await expect(expert.locator(".report-current .badge")).to_have_text("Signed")
    await expect(complete).to_be_enabled()
    await complete.click()
    await expect(expert.locator(".summary-strip .badge[data-status]")).to_have_text(re.compile("Completed"))
    timeline = expert.locator(".timeline li")
    await expect(timeline).to_have_count(4)

    # Back at the village clinic: completed, with the signed report.
    await doctor.reload()
    await expect(doctor.locator(".summary-strip .badge[data-status]")).to_have_text(re.compile("Completed"))
    await expect(doctor.locator("[data-field=impression]")).to_have_text(IMPRESSION)
    await expect(doctor.locator(".report-meta")).to_contain_text("signed by Prof. Zhou Jianhua (周建华) on")
    await doctor.get_by_role("link", name="Consultations").first.click()
    await doctor.get_by_role("tab", name="Completed").click()
    await expect(doctor.locator(f"tr[data-id='{cid}']")).to_have_attribute("data-status", "completed")

    assert doctor.js_errors == [] and expert.js_errors == []


async def test_wrong_password_shows_the_error(new_page) -> None:
    page = await new_page()
    await page.goto("/")  # in Chinese, the default
    await page.get_by_label("用户名").fill("village")
    await page.get_by_label("密码").fill("not-the-password")
    await page.get_by_role("button", name="登录", exact=True).click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("用户名或密码错误")
    await expect(page.locator("#logout")).to_have_count(0)
    assert await page.evaluate("sessionStorage.getItem('yilian.token')") is None
    # A correct password afterwards logs in.
    await page.get_by_label("密码").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.locator("#logout")).to_be_visible()
    assert page.js_errors == []


async def test_slot_taken_meanwhile_shows_the_conflict_and_fresh_slots(new_page, api) -> None:
    page = await new_page()
    await login(page, "village")
    await page.get_by_role("link", name="Find an expert").click()
    card = page.locator("article.expert-card", has_text="Prof. Zhou Jianhua")
    chip = card.locator("a.slot-chip").first
    slot_id = int(re.search(r"slot=(\d+)", await chip.get_attribute("href")).group(1))
    await chip.click()
    await expect(page.get_by_label("Time slot")).to_have_value(str(slot_id))
    patient = page.get_by_role("combobox", name="Patient", exact=True)
    await patient.select_option(index=1)
    await page.get_by_label("Clinical question").fill("Palpitations; Holter shows runs of SVT.")

    # Another clinic books the same slot first.
    township = await api.login("township")
    status, body = await township.post("/api/patients", {"name": "Huang Meiling", "sex": "female"})
    assert status == 201, body
    status, body = await township.post("/api/consultations", {
        "patient_id": body["id"], "kind": "video", "question": "Chest pain.",
        "expert_id": int(await card.get_attribute("data-expert-id") or 0),
        "slot_id": slot_id})
    assert status == 201, body

    await page.get_by_role("button", name="Send request").click()
    await expect(page.get_by_role("alert")).to_contain_text(f"slot {slot_id} is already booked")
    await expect(page).to_have_url(re.compile(r"#/request\?"))
    # the fresh slots replace the list after the alert: wait for them, do not read at once
    await expect(page.get_by_label("Time slot").locator(f"option[value='{slot_id}']")
                 ).to_have_count(0)
    await page.get_by_label("Time slot").select_option(index=1)
    await page.get_by_role("button", name="Send request").click()
    await expect(page).to_have_url(re.compile(r"#/consultations/\d+$"))
    assert page.js_errors == []
