"""A live video call through the browser: the village doctor and the expert join the room of an
accepted consultation over /rtc signalling, see each other's (fake) camera, and chat."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.e2e.test_layout import login_zh as login

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
    await page.get_by_role("link", name="加入视频").click()
    await expect(page).to_have_url(re.compile(rf"#/consultations/{cid}/video$"))


async def test_doctor_and_expert_see_each_other_and_chat(new_page, api) -> None:
    cid = await accepted_consultation(api)
    doctor, expert = await new_page(), await new_page()
    await login(doctor, "village")
    await login(expert, "expert")

    await open_call(doctor, cid)
    await expect(doctor.locator(".call-state")).to_have_text("通话中")
    await open_call(expert, cid)
    await expect(expert.locator(".call-state")).to_have_text("通话中")

    for page in (doctor, expert):
        await expect(page.locator(".tile")).to_have_count(1)
        await page.wait_for_function(VIDEO_PLAYING, arg=".tile video", timeout=20_000)
        await expect(page.locator(".tile")).to_have_attribute("data-state", "connected")
    await expect(doctor.locator(".tile-name").first).to_contain_text("Prof. Zhou Jianhua")

    await expert.get_by_role("textbox", name="输入消息").fill("Please hold the INR result up to the camera.")
    await expert.get_by_role("button", name="发送", exact=True).click()
    await expect(doctor.locator(".chat-line")).to_contain_text(["Please hold the INR result"])

    # The expert leaves: the doctor's tile goes, and the chat is kept with the consultation.
    await expert.get_by_role("button", name="离开视频").click()
    await expect(expert).to_have_url(re.compile(rf"#/consultations/{cid}$"))
    await expect(doctor.locator(".tile")).to_have_count(0)
    await doctor.get_by_role("button", name="离开视频").click()
    await doctor.goto(f"/#/consultations/{cid}/video")
    await expect(doctor.locator(".chat-line")).to_contain_text(["Please hold the INR result"])
    assert doctor.js_errors == [] and expert.js_errors == []


async def test_expert_admits_the_doctor_from_the_lobby(new_page, api) -> None:
    cid = await accepted_consultation(api)
    doctor, expert = await new_page(), await new_page()
    await login(doctor, "village")
    await login(expert, "expert")

    await open_call(expert, cid)
    await expect(expert.locator(".call-state")).to_have_text("通话中")
    lobby = expert.get_by_role("region", name="等候室")
    await lobby.get_by_label("新加入者先在等候室等待").check()

    await open_call(doctor, cid)
    await expect(doctor.locator(".call-state")).to_have_text("等待专家允许进入…")
    await expect(lobby.locator("li")).to_contain_text("Dr. Chen Liping")
    await expect(expert.locator(".tile")).to_have_count(0)
    await lobby.get_by_role("button", name="允许进入").click()

    for page in (doctor, expert):
        await expect(page.locator(".call-state")).to_have_text("通话中")
        await page.wait_for_function(VIDEO_PLAYING, arg=".tile video", timeout=20_000)
    await expect(lobby.locator("li")).to_have_count(0)
    assert doctor.js_errors == [] and expert.js_errors == []


async def _reading_window(page: Page, button) -> str:  # noqa: ANN001 - a Playwright locator
    """Click a study's button; return the address the reading window opened, and close it."""
    async with page.expect_popup() as opened:
        await button.click()
    window = await opened.value
    await window.wait_for_url(re.compile(r"/ohif/"))
    url = window.url
    await window.close()
    return url


async def test_the_shared_studies_open_in_the_reading_window_beside_the_call(new_page, api) -> None:
    expert_api = await api.login("expert")
    status, rows = await expert_api.get("/api/consultations", params={"status": "in_progress"})
    assert status == 200, rows
    case = next(c for c in rows if len(c["study_uids"]) >= 2)
    page = await new_page()
    await login(page, "expert")
    await page.goto(f"/#/consultations/{case['id']}/video")
    await expect(page.locator(".call-state")).to_have_text("通话中")

    studies = page.get_by_role("region", name="共享影像")
    items = studies.locator("li")
    await expect(items).to_have_count(len(case["study_uids"]))
    ct = studies.locator("li", has_text="CT")
    await expect(ct).to_contain_text("12 幅图像")
    url = await _reading_window(page, ct.get_by_role("button"))
    ct_uid = await ct.get_attribute("data-study-uid")
    assert re.search(rf"/ohif/viewer\?StudyInstanceUIDs={re.escape(ct_uid)}&lng=zh$", url), url
    slide = studies.locator("li", has_text="SM")
    await expect(slide.get_by_role("button")).to_have_text("看切片")
    url = await _reading_window(page, slide.get_by_role("button"))
    assert "/ohif/microscopy?StudyInstanceUIDs=" in url, url
    # The call goes on in this tab.
    await expect(page).to_have_url(re.compile(rf"#/consultations/{case['id']}/video$"))
    await expect(page.locator(".call-state")).to_have_text("通话中")
    assert page.js_errors == []


async def test_the_studies_panel_without_studies_or_image_server(new_page, api) -> None:
    cid = await accepted_consultation(api)  # shares no study
    page = await new_page()
    await login(page, "village")
    await page.goto(f"/#/consultations/{cid}/video")
    await expect(page.get_by_role("region", name="共享影像")).to_contain_text("本次会诊尚未共享影像。")

    # The image server cannot be reached: each study still opens in the viewer, named by its UID.
    expert_api = await api.login("expert")
    status, rows = await expert_api.get("/api/consultations", params={"status": "in_progress"})
    case = next(c for c in rows if c["study_uids"])
    expert = await new_page()
    await expert.route("**/dicomweb/**", lambda route: route.abort())
    await login(expert, "expert")
    await expert.goto(f"/#/consultations/{case['id']}/video")
    first = expert.get_by_role("region", name="共享影像").locator("li").first
    await expect(first).to_contain_text("暂时无法读取检查信息")
    await expect(first.locator("code.uid")).to_have_text(case["study_uids"][0])
    url = await _reading_window(expert, first.get_by_role("button"))
    assert f"/ohif/viewer?StudyInstanceUIDs={case['study_uids'][0]}" in url, url
    assert page.js_errors == [] and expert.js_errors == []
