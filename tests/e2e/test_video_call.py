"""A live video call through the browser: the village doctor and the expert join the room of an
accepted consultation over /rtc signalling, see each other's (fake) camera, and chat."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.e2e.test_consultation_flow import login

VIDEO_PLAYING = """(sel) => { const v = document.querySelector(sel);
  return !!v && v.readyState >= 2 && v.videoWidth > 0; }"""


async def accepted_consultation(api) -> int:  # noqa: ANN001 - the conftest Api helper
    village = await api.login("village")
    status, rows = await village.get("/api/consultations", params={"status": "accepted"})
    assert status == 200, rows
    mine = [c for c in rows if c["requester_id"] == village.user["id"]]
    assert mine, rows
    return int(mine[0]["id"])


async def open_call(page: Page, cid: int) -> None:
    await page.goto(f"/#/consultations/{cid}")
    await page.get_by_role("link", name="Join video").click()
    await expect(page).to_have_url(re.compile(rf"#/consultations/{cid}/video$"))


async def test_doctor_and_expert_see_each_other_and_chat(new_page, api) -> None:
    cid = await accepted_consultation(api)
    doctor, expert = await new_page(), await new_page()
    await login(doctor, "village")
    await login(expert, "expert")

    await open_call(doctor, cid)
    await expect(doctor.locator(".call-state")).to_have_text(re.compile("In the call"))
    await open_call(expert, cid)
    await expect(expert.locator(".call-state")).to_have_text(re.compile("In the call"))

    for page in (doctor, expert):
        await expect(page.locator(".tile")).to_have_count(1)
        await page.wait_for_function(VIDEO_PLAYING, arg=".tile video", timeout=20_000)
        await expect(page.locator(".tile")).to_have_attribute("data-state", "connected")
    await expect(doctor.locator(".tile-name").first).to_contain_text("Prof. Zhou Jianhua")

    await expert.get_by_role("textbox", name="Message").fill("Please hold the INR result up to the camera.")
    await expert.get_by_role("button", name="Send").click()
    await expect(doctor.locator(".chat-line")).to_contain_text(["Please hold the INR result"])

    # The expert leaves: the doctor's tile goes, and the chat is kept with the consultation.
    await expert.get_by_role("button", name="Leave call").click()
    await expect(expert).to_have_url(re.compile(rf"#/consultations/{cid}$"))
    await expect(doctor.locator(".tile")).to_have_count(0)
    await doctor.get_by_role("button", name="Leave call").click()
    await doctor.goto(f"/#/consultations/{cid}/video")
    await expect(doctor.locator(".chat-line")).to_contain_text(["Please hold the INR result"])
    assert doctor.js_errors == [] and expert.js_errors == []


async def test_expert_admits_the_doctor_from_the_lobby(new_page, api) -> None:
    cid = await accepted_consultation(api)
    doctor, expert = await new_page(), await new_page()
    await login(doctor, "village")
    await login(expert, "expert")

    await open_call(expert, cid)
    await expect(expert.locator(".call-state")).to_have_text(re.compile("In the call"))
    lobby = expert.get_by_role("region", name="Lobby 等候室")
    await lobby.get_by_label("Hold new participants in the lobby").check()

    await open_call(doctor, cid)
    await expect(doctor.locator(".call-state")).to_have_text(re.compile("Waiting for the expert"))
    await expect(lobby.locator("li")).to_contain_text("Dr. Chen Liping")
    await expect(expert.locator(".tile")).to_have_count(0)
    await lobby.get_by_role("button", name="Admit").click()

    for page in (doctor, expert):
        await expect(page.locator(".call-state")).to_have_text(re.compile("In the call"))
        await page.wait_for_function(VIDEO_PLAYING, arg=".tile video", timeout=20_000)
    await expect(lobby.locator("li")).to_have_count(0)
    assert doctor.js_errors == [] and expert.js_errors == []
