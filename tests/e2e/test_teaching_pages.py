"""The teaching pages in Chromium: the expert schedules a lecture through the form (bad input
first), edits it, finds it in the list (filtered by kind, in both languages), and after a
doctor of an invited clinic came and went the attendance page shows them, per person and per
institution, with the CSV download. Screenshots go to /tmp/shots-teaching/ (or YILIAN_SHOTS)."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_layout import login_zh as login
from tests.support.rtc_client import RtcClient
from yilian.server.clinic.teaching.models import TeachingSession
from yilian.server.core import keys

SHOTS = Path(os.environ.get("YILIAN_SHOTS", "/tmp/shots-teaching"))
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The Guangdong alliance's members, in the order the server lists them.
GUANGDONG = ["广东省人民医院", "茂名市人民医院", "广东省人民医院粤西医院 / 电白区人民医院", "沙琅镇中心卫生院",
             "尚塘村卫生站"]
pytestmark = pytest.mark.slow


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def local_input(at: datetime) -> str:
    """The value a datetime-local field takes for this instant (Beijing time)."""
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


async def test_schedule_edit_list_and_attendance(new_page, api, server) -> None:  # noqa: PLR0915 - one story
    page = await new_page()
    await login(page, "expert")
    nav = page.get_by_role("navigation", name="主导航")
    await nav.get_by_role("link", name="远程示教").click()
    await expect(page).to_have_url(re.compile(r"#/teaching$"))
    await expect(page.get_by_role("heading", name="远程示教", exact=True)).to_be_visible()
    await page.get_by_role("link", name="安排示教").first.click()
    await expect(page).to_have_url(re.compile(r"#/teaching/new$"))

    start = datetime.now(SHANGHAI).replace(second=0, microsecond=0) + timedelta(days=1)
    await page.get_by_label("标题").fill("急性心梗的介入治疗")
    await page.get_by_label("类型").select_option("lecture")
    await page.get_by_label("开始", exact=True).fill(local_input(start))
    await page.get_by_label("结束", exact=True).fill(local_input(start - timedelta(hours=1)))
    # Bad input is said in the form, and nothing is sent: the end before the start ...
    await page.get_by_role("button", name="安排", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("结束时间必须晚于开始时间。")
    await page.get_by_label("结束", exact=True).fill(local_input(start + timedelta(hours=1, minutes=30)))
    # ... and no institution invited.
    await page.get_by_role("button", name="安排", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("请至少邀请一家机构。")
    await expect(page).to_have_url(re.compile(r"#/teaching/new$"))

    invitations = page.locator("[data-testid=invitations]")
    alliance = invitations.locator("fieldset", has_text="Guangdong Five-Level")
    await alliance.get_by_label("全部成员").check()
    for name in GUANGDONG:
        await expect(alliance.get_by_label(name, exact=True)).to_be_checked()
    await page.get_by_label("简介").fill("病例讨论与手术录像")
    await shot(page, "form")
    await page.get_by_role("button", name="安排", exact=True).click()
    await expect(page).to_have_url(re.compile(r"#/teaching/\d+$"))
    sid = int(page.url.rsplit("/", 1)[1])
    invited = page.locator("[data-testid=invited] li")
    await expect(invited).to_have_text(GUANGDONG)
    await expect(page.locator(".teach-details")).to_contain_text("未开始")
    await expect(page.locator(".teach-stage")).to_be_visible()  # the presenter's stage
    await shot(page, "session-scheduled")

    # Edit: a new title, and the village clinic no longer invited.
    await page.get_by_role("link", name="修改").click()
    await expect(page).to_have_url(re.compile(rf"#/teaching/{sid}/edit$"))
    await expect(page.get_by_label("标题")).to_have_value("急性心梗的介入治疗")
    await page.get_by_label("标题").fill("急性心梗介入治疗（第二讲）")
    alliance = page.locator("[data-testid=invitations] fieldset", has_text="Guangdong Five-Level")
    await alliance.get_by_label("尚塘村卫生站", exact=True).uncheck()
    await expect(alliance.get_by_label("全部成员")).not_to_be_checked()
    await page.get_by_role("button", name="保存").click()
    await expect(page).to_have_url(re.compile(rf"#/teaching/{sid}$"))
    await expect(page.get_by_role("heading", name="急性心梗介入治疗（第二讲）")).to_be_visible()
    await expect(page.locator("[data-testid=invited] li")).to_have_text(GUANGDONG[:4])
    expert = await api.login("expert")
    status, body = await expert.get(f"/api/teaching-sessions/{sid}")
    assert status == 200, body
    assert body["title"] == "急性心梗介入治疗（第二讲）" and len(body["invited_institutions"]) == 4
    assert body["description"] == "病例讨论与手术录像" and body["kind"] == "lecture"

    # The list: upcoming, filtered by kind; the language switch redraws it in English.
    await page.goto("/#/teaching")
    card = page.locator(f".teach-card[data-id='{sid}']")
    await expect(card).to_contain_text("急性心梗介入治疗（第二讲）")
    await expect(page.locator(".teach-section-upcoming")).to_contain_text("即将开始")
    await page.get_by_label("类型").select_option("rounds")
    await expect(page).to_have_url(re.compile(r"#/teaching\?kind=rounds$"))
    await expect(card).to_have_count(0)
    await page.get_by_label("类型").select_option("lecture")
    await expect(card).to_be_visible()
    await shot(page, "list")
    await page.locator(".lang-switch").click()
    await expect(page.get_by_role("heading", name="Teaching sessions")).to_be_visible()
    await expect(page.get_by_label("Kind")).to_have_value("lecture")
    await expect(card.locator(".teach-kind")).to_have_text("Lecture")
    await page.locator(".lang-switch").click()
    await expect(page.get_by_role("heading", name="远程示教", exact=True)).to_be_visible()

    # The session goes live (its start is tomorrow: moved here rather than waited for), and a
    # township doctor of an invited institution comes and goes: the attendance shows them.
    async with server.app[keys.DATABASE].write() as session:
        row = await session.get(TeachingSession, sid)
        assert row is not None
        row.status, row.started_at = "live", datetime.now(ZoneInfo("UTC")) - timedelta(minutes=5)
    township = await api.login("township")
    client = RtcClient(str(server.make_url("/")).rstrip("/"), township.token, label="township",
                       auto_negotiate=False)
    try:
        await client.connect()
        ack = await client.join(f"teaching:{sid}")
        assert ack.get("ok"), ack
        await client.leave()
    finally:
        await client.close()
    await page.goto(f"/#/teaching/{sid}/attendance")
    person = page.locator(f"tr[data-user='{township.user['id']}']")
    await expect(person).to_contain_text("Dr. Huang Zhiqiang")
    await expect(person).to_contain_text("沙琅镇中心卫生院")
    inst = page.locator(f"tr[data-institution='{township.user['institution_id']}']")
    await expect(inst.locator("td").nth(1)).to_have_text("1")
    await shot(page, "attendance")
    async with page.expect_download() as info:
        await page.get_by_role("button", name="下载 CSV").click()
    download = await info.value
    data = await asyncio.to_thread(Path.read_bytes, await download.path())
    assert data.startswith(b"\xef\xbb\xbf"), data[:20]
    assert "Dr. Huang Zhiqiang" in data.decode("utf-8-sig")
    assert page.js_errors == []


async def test_a_doctor_of_an_uninvited_institution_is_refused(new_page, api) -> None:
    expert = await api.login("expert")
    start = datetime.now(SHANGHAI) + timedelta(days=2)
    status, s = await expert.post("/api/teaching-sessions", {
        "title": "Ward rounds", "kind": "rounds", "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(), "presenter_id": expert.user["id"],
        "invited_institution_ids": [expert.user["institution_id"]]})
    assert status == 201, s
    page = await new_page()
    await login(page, "guilin_doctor")
    await page.goto(f"/#/teaching/{s['id']}")
    # Not invited: the server says so, in the user's language, and nothing else is drawn.
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.locator(".teach-stage")).to_have_count(0)
    assert page.js_errors == []


# Every capture the page opens, kept on window so a test can see that none stays live. The
# screen share is a canvas stream: headless Chromium has no screen picker.
TRACK_HOOK = """(() => {
  window.__tracks = [];
  const md = navigator.mediaDevices;
  const gum = md.getUserMedia.bind(md);
  md.getUserMedia = async (c) => { const s = await gum(c); window.__tracks.push(...s.getTracks()); return s; };
  md.getDisplayMedia = async () => {
    const canvas = document.createElement("canvas"); canvas.width = 320; canvas.height = 240;
    const ctx = canvas.getContext("2d"); ctx.fillStyle = "#3a6"; ctx.fillRect(0, 0, 320, 240);
    const s = canvas.captureStream(15);
    s.getTracks().forEach((tr) => { tr.__screen = true; });
    window.__tracks.push(...s.getTracks());
    return s;
  };
})()"""
LIVE_TRACKS = "() => window.__tracks.filter((tr) => tr.readyState === 'live').map((tr) => tr.__screen ? 'screen' : tr.kind)"


async def _session_now(expert, record: bool = False) -> dict:
    start = datetime.now(SHANGHAI)
    status, s = await expert.post("/api/teaching-sessions", {
        "title": "Sharing", "kind": "lecture", "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(), "presenter_id": expert.user["id"],
        "invited_institution_ids": [expert.user["institution_id"]], "record": record})
    assert status == 201, s
    return s


async def test_leaving_while_sharing_stops_every_capture_and_superseded_offers_take_over(
        new_page, api, server) -> None:
    from yilian.signaling.keys import RTC

    expert = await api.login("expert")
    s = await _session_now(expert)
    page = await new_page()
    await page.add_init_script(TRACK_HOOK)
    await login(page, "expert")
    await page.goto(f"/#/teaching/{s['id']}")
    await page.get_by_role("button", name="开始直播").click()
    share = page.locator("[data-action=share]")
    await expect(share).to_be_visible()
    await share.click()
    await expect(share).to_have_attribute("aria-pressed", "true")
    assert "screen" in await page.evaluate(LIVE_TRACKS)

    # Another tab of the presenter went on air: this one stops (the share too) and offers to take over.
    await server.app[RTC].sio.emit("superseded", {"room": f"teaching:{s['id']}"}, namespace="/rtc")
    notice = page.locator(".teach-superseded")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("您已在另一个窗口或设备上开始直播")
    await expect(share).to_be_hidden()
    await page.wait_for_function(f"() => !({LIVE_TRACKS})().includes('screen')")
    assert await page.evaluate(LIVE_TRACKS), "the camera stays for the preview"
    await notice.get_by_role("button", name="在此继续直播").click()
    await expect(notice).to_be_hidden()
    await expect(share).to_be_visible()

    # Sharing again, then leaving the page: no capture stays live (no "sharing" bar left behind).
    await share.click()
    await expect(share).to_have_attribute("aria-pressed", "true")
    await page.get_by_role("link", name="全部示教").click()
    await expect(page).to_have_url(re.compile(r"#/teaching$"))
    await page.wait_for_function(f"() => ({LIVE_TRACKS})().length === 0")
    assert page.js_errors == []


async def test_a_failed_ice_servers_request_stops_the_camera(new_page, api) -> None:
    expert = await api.login("expert")
    s = await _session_now(expert)
    page = await new_page()
    await page.add_init_script(TRACK_HOOK)
    await login(page, "expert")
    await page.route("**/api/rtc/ice-servers", lambda route: route.fulfill(
        status=500, content_type="application/json",
        body='{"error": {"code": "internal", "message": "boom"}}'))
    await page.goto(f"/#/teaching/{s['id']}")
    await expect(page.get_by_role("alert")).to_be_visible()
    await page.wait_for_function("() => window.__tracks.length > 0")
    await page.wait_for_function(f"() => ({LIVE_TRACKS})().length === 0")


async def test_an_expired_replay_link_is_fetched_again_once(new_page, api) -> None:
    expert = await api.login("expert")
    s = await _session_now(expert)
    for step in ("start", "end"):
        status, body = await expert.post(f"/api/teaching-sessions/{s['id']}/{step}")
        assert status == 200, body
    page = await new_page()
    await login(page, "expert")
    fetched: list[str] = []

    async def session(route) -> None:  # noqa: ANN001
        response = await route.fetch()
        body = await response.json()
        url = f"/replay-{len(fetched)}.webm"
        fetched.append(url)
        body["recordings"] = [{"id": 7, "status": "ready", "url": url, "duration_s": 60, "bytes": 1000,
                               "started_at": body.get("started_at")}]
        await route.fulfill(response=response, json=body)

    await page.route(re.compile(rf".*/api/teaching-sessions/{s['id']}$"), session)
    # Every link is refused as expired: one fresh link is asked for, not a loop of them.
    await page.route("**/replay-*.webm", lambda route: route.fulfill(
        status=403, content_type="application/json", body='{"error": {"code": "link_expired"}}'))
    await page.goto(f"/#/teaching/{s['id']}")
    video = page.locator(".teach-replay video")
    await expect(video).to_have_attribute("src", "/replay-1.webm")
    await page.wait_for_timeout(800)
    assert fetched == ["/replay-0.webm", "/replay-1.webm"]
    assert page.js_errors == []
