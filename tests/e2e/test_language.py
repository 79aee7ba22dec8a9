"""The language in the browser: Chinese by default, English by the switch and back, the choice
kept by the server across logins, and server errors shown in the user's language."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.server.helpers import book
from yilian.server.demo import DEMO_PASSWORD

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
# Sections of the consultation page that other modules render (features/report.js, studies.js,
# video.js), converted to the tables on their own schedule: left out of the no-Chinese check
# until they are. Empty this once they have been converted.


async def _login(page: Page, username: str, *, user_label: str, password_label: str, submit: str) -> None:
    await page.get_by_label(user_label).fill(username)
    await page.get_by_label(password_label).fill(DEMO_PASSWORD)
    await page.get_by_role("button", name=submit, exact=True).click()
    await expect(page.locator("#logout")).to_be_visible()


async def _data_strings(page: Page, api, consultation_id: int | None = None) -> list[str]:
    """Names and free text that come from the data (patients, people, institutions, the
    clinical question): written as their owners wrote them, in any language."""
    api.token = await page.evaluate("sessionStorage.getItem('yilian.token')")
    found: set[str] = set()
    _, me = await api.get("/api/me")
    found.add(me["display_name"])
    _, institutions = await api.get("/api/institutions")
    for i in institutions:
        found.update(filter(None, (i.get("name"), i.get("local_name"))))
    _, alliances = await api.get("/api/alliances")
    found.update(a["name"] for a in alliances)
    _, experts = await api.get("/api/experts")
    for e in experts:
        found.update(filter(None, (e.get("display_name"), e.get("institution_name"))))
    _, rows = await api.get("/api/consultations")
    if consultation_id is not None:
        _, one = await api.get(f"/api/consultations/{consultation_id}")
        rows.append(one)
    for c in rows:
        found.update(filter(None, (c["patient"]["name"], c.get("question"), c.get("reason"),
                                   c.get("requester_name"), c.get("expert_name"))))
        for event in c.get("history") or []:
            found.update(filter(None, (event.get("actor_name"), event.get("note"))))
    return sorted(found, key=len, reverse=True)


async def _chinese_outside_data(page: Page, data: list[str]) -> list[str]:
    """The visible text of the page (top bar and screen) with the data's strings taken out:
    whatever Chinese is left is the interface's own."""
    text = await page.evaluate("document.body.innerText")
    # The language switch names Chinese in Chinese ("中文"), as language pickers do.
    for switch in await page.locator(".lang-switch[lang=zh-CN]").all_inner_texts():
        text = text.replace(switch, " ")
    for s in data:
        text = text.replace(s, " ")
    return [line for line in text.splitlines() if CJK.search(line)]


async def test_chinese_by_default_english_by_the_switch_and_back(new_page, api) -> None:
    village = await api.login("village")
    expert = await api.login("expert")
    c = await book(village, expert.user["id"])

    page = await new_page()
    await page.goto("/")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.get_by_role("heading", name="医联", exact=True)).to_be_visible()
    await expect(page).to_have_title(re.compile("医联"))
    await _login(page, "village", user_label="用户名", password_label="密码", submit="登录")
    nav = page.get_by_role("navigation", name="主导航")
    await expect(nav.get_by_role("link", name="会诊", exact=True)).to_be_visible()
    await expect(page.get_by_role("heading", name="会诊", exact=True)).to_be_visible()
    row = page.locator(f"tr[data-id='{c['id']}']")
    await expect(row).to_contain_text("已申请")
    await expect(row).to_contain_text("视频会诊")
    await page.screenshot(path="/tmp/shell-list-zh.png", full_page=True)

    await page.get_by_role("button", name="切换为英文界面").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Consultations", exact=True)).to_be_visible()
    await expect(row).to_contain_text("Requested")
    await expect(page).to_have_title(re.compile("^Yilian"))
    data = await _data_strings(page, api, c["id"])
    assert await _chinese_outside_data(page, data) == []
    await page.screenshot(path="/tmp/shell-list-en.png", full_page=True)
    status, me = await api.get("/api/me")
    assert status == 200 and me["locale"] == "en"  # saved as the user's

    await row.get_by_role("link", name=f"#{c['id']}").click()
    await expect(page.get_by_role("heading", name=f"Consultation #{c['id']}")).to_be_visible()
    await expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    await expect(page.locator(".facts")).to_contain_text("Beijing time")
    await expect(page.locator("#report-panel")).to_be_visible()
    assert await _chinese_outside_data(page, data) == []
    await page.screenshot(path="/tmp/shell-detail-en.png", full_page=True)

    # Back to Chinese in place: the same screen, now in Chinese, dates too.
    await page.get_by_role("button", name="Switch the language to Chinese").click()
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.get_by_role("heading", name=f"会诊 #{c['id']}")).to_be_visible()
    await expect(page.get_by_role("heading", name="流程记录")).to_be_visible()
    await expect(page.locator(".facts")).to_contain_text("北京时间")
    await expect(page.locator(".facts")).to_contain_text("月")  # a Chinese date: "11月30日…"
    await page.screenshot(path="/tmp/shell-detail-zh.png", full_page=True)
    status, me = await api.get("/api/me")
    assert me["locale"] == "zh-CN"
    assert page.js_errors == []


async def test_the_choice_survives_logout_and_login_and_errors_are_localised(new_page, api) -> None:
    page = await new_page()
    await page.goto("/")
    # Wrong password: the server's 401 in Chinese.
    await page.get_by_label("用户名").fill("township")
    await page.get_by_label("密码").fill("not-the-password")
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误。")
    # The switch on the login page keeps what was typed, and the error follows the language.
    await page.get_by_role("button", name="切换为英文界面").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_label("Username")).to_have_value("township")
    await page.get_by_role("button", name="Log in", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("Wrong username or password.")
    await page.screenshot(path="/tmp/shell-login-en.png")

    # The language picked before login becomes the user's (they had none saved).
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Log in", exact=True).click()
    await expect(page.locator("#logout")).to_be_visible()
    api.token = await page.evaluate("sessionStorage.getItem('yilian.token')")
    status, me = await api.get("/api/me")
    assert status == 200 and me["locale"] == "en"
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()

    # Another browser (nothing remembered there) opens in Chinese; logging in brings the
    # user's language from the server.
    other = await new_page()
    await other.goto("/")
    await expect(other.locator("html")).to_have_attribute("lang", "zh-CN")
    await _login(other, "township", user_label="用户名", password_label="密码", submit="登录")
    await expect(other.locator("html")).to_have_attribute("lang", "en")
    await expect(other.get_by_role("link", name="Consultations", exact=True)).to_be_visible()

    # A refused field (422), in English: a reason of spaces only is no reason.
    township = await api.login("township")
    expert = await api.login("expert")
    c = await book(township, expert.user["id"])
    await other.goto(f"/#/consultations/{c['id']}")
    await expect(other.get_by_role("heading", name=f"Consultation #{c['id']}")).to_be_visible()
    await other.get_by_role("button", name="Cancel request").click()
    dialog = other.get_by_role("dialog")
    await dialog.get_by_label("Reason for cancelling").fill("   ")
    await dialog.get_by_role("button", name="Cancel consultation").click()
    alert = dialog.get_by_role("alert")
    await expect(alert.locator("strong")).to_have_text("Some entries are not valid; please check them.")
    await expect(alert.locator("li")).to_have_text(["Reason: too short"])
    await dialog.get_by_role("button", name="Keep the request").click()
    await expect(dialog).to_have_count(0)

    # The same in Chinese, then a 409: the request was cancelled meanwhile (in another tab).
    await other.get_by_role("button", name="Switch the language to Chinese").click()
    await expect(other.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(other.get_by_role("heading", name=f"会诊 #{c['id']}")).to_be_visible()
    await other.get_by_role("button", name="取消申请").click()
    await dialog.get_by_label("取消原因").fill(" ")
    await dialog.get_by_role("button", name="取消会诊").click()
    await expect(alert.locator("strong")).to_have_text("部分填写内容不符合要求，请检查。")
    await expect(alert.locator("li")).to_have_text(["原因：过短"])
    status, _ = await township.post(f"/api/consultations/{c['id']}/cancel", {"reason": "另一窗口已取消"})
    assert status == 200
    await dialog.get_by_label("取消原因").fill("患者已转院")
    await dialog.get_by_role("button", name="取消会诊").click()
    await expect(alert.locator("strong")).to_have_text("状态已变化，该操作已无法进行，请刷新页面。")
    assert await alert.get_attribute("data-code") == "invalid_transition"
    await other.screenshot(path="/tmp/shell-conflict-zh.png")
    assert page.js_errors == [] and other.js_errors == []


async def test_a_report_being_written_is_not_torn_down_by_the_switch(new_page, api) -> None:
    expert = await api.login("expert")
    _, mine = await expert.get("/api/consultations", params={"role": "expert", "status": "in_progress"})
    c = next(row for row in mine if row["report_status"] == "none")
    page = await new_page()
    await page.goto("/")
    await _login(page, "expert", user_label="用户名", password_label="密码", submit="登录")
    await page.goto(f"/#/consultations/{c['id']}")
    impression = page.locator("textarea[name=impression]")
    await impression.fill("疑似急性冠脉综合征")
    await page.get_by_role("button", name="切换为英文界面").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    queue = page.get_by_role("navigation", name="Main").locator("a[href='#/queue']")
    await expect(queue).to_contain_text("Queue")
    await expect(page.get_by_role("heading", name=f"会诊 #{c['id']}")).to_be_visible()  # not redrawn
    await expect(page.locator(".toast")).to_contain_text("changes language when you save or leave it")
    await expect(impression).to_have_value("疑似急性冠脉综合征")
    await expect(impression).to_be_attached()
    # The next screen is drawn in English.
    await queue.click()
    await expect(page.get_by_role("heading", name="Work queue")).to_be_visible()
    assert page.js_errors == []
