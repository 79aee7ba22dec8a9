"""The booking screens in Chinese (the default language): finding an expert, an expert's slots,
and the availability editor, with the mistakes a user makes on them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import expect

from tests.e2e.test_layout import login_zh as login

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_find_an_expert_and_book_from_their_slots(new_page) -> None:
    page = await new_page()
    await login(page, "village")
    await page.goto("/#/experts")
    await expect(page.get_by_role("heading", name="找专家")).to_be_visible()
    cards = page.locator("article.expert-card")
    await expect(cards.first).to_be_visible()
    total = await cards.count()
    await expect(page.get_by_role("status").filter(has_text="位专家")).to_have_text(f"共 {total} 位专家 · 本医联体优先")

    # A search that matches nobody says so and offers to clear the filters.
    await page.get_by_label("专科").select_option("cardiology")
    await page.get_by_label("搜索").fill("无此人")
    await expect(page.get_by_text("没有符合条件的专家。")).to_be_visible()
    await page.get_by_role("button", name="清除筛选").click()
    await expect(cards).to_have_count(total)
    await expect(page.get_by_label("专科")).to_have_value("")

    card = cards.filter(has_text="Prof. Zhou Jianhua")
    await expect(card.locator(".tag-level")).to_have_text("省级")
    await card.get_by_role("link", name="全部时段").click()
    await expect(page).to_have_url(re.compile(r"#/experts/\d+$"))
    # the search typed above (debounced) must not rewrite this screen's address afterwards
    await page.wait_for_timeout(400)
    await expect(page).to_have_url(re.compile(r"#/experts/\d+$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("出诊时段")
    assert await page.locator("span.slot-btn").count() == 0  # only free slots at first

    # Booked slots are shown on request, told apart by text for screen readers too.
    await page.get_by_role("link", name="显示已约和停诊").click()
    await expect(page.get_by_role("link", name="仅看可约")).to_have_attribute("aria-pressed", "true")
    booked = page.locator("span.slot-btn[data-status=booked]")
    await expect(booked.first).to_contain_text("已约")

    free = page.locator("a.slot-btn.free").first
    slot_id = await free.get_attribute("data-slot-id")
    await expect(free).to_have_attribute("aria-label", re.compile(r"^预约 .+ \d\d:\d\d$"))
    await free.click()
    await expect(page).to_have_url(re.compile(rf"#/request\?expert=\d+&slot={slot_id}$"))
    assert page.js_errors == []


async def test_expert_edits_availability_and_mistakes_are_refused(new_page, api) -> None:
    expert_api = await api.login("expert")
    path = f"/api/experts/{expert_api.user['id']}/availability"
    status, before = await expert_api.get(path)
    assert status == 200, before
    # Hours kept in a zone the editor does not list (set through the API) keep that zone.
    before["timezone"] = "Asia/Chongqing"
    status, body = await expert_api.put(path, {k: before[k] for k in ("timezone", "weekly", "exceptions")})
    assert status == 200, body
    status, before = await expert_api.get(path)
    assert status == 200 and before["timezone"] == "Asia/Chongqing", before
    page = await new_page()
    await login(page, "expert")
    await page.goto("/#/availability")
    await expect(page.get_by_role("heading", name="出诊时间")).to_be_visible()
    await expect(page.locator("tr.rule-row")).to_have_count(len(before["weekly"]))
    save = page.get_by_role("button", name="保存出诊时间")
    zone = page.get_by_label("出诊时间所用时区")
    await expect(zone).to_have_value("Asia/Chongqing")
    await expect(zone.locator("option[value='Asia/Shanghai']")).to_have_text("北京时间（Asia/Shanghai）")

    # Weekly hours that end before they start: refused in the page, nothing sent.
    end = page.get_by_label("第 1 条：结束")
    kept = await end.input_value()
    await end.fill("06:00")
    await save.click()
    await expect(page.get_by_role("alert")).to_have_text("第 1 条出诊时间：结束时间须晚于开始时间。")
    assert (await expert_api.get(path))[1] == before
    await end.fill(kept)

    # A leave that ends before it starts: the server refuses it and keeps the old hours.
    tomorrow = (datetime.now(SHANGHAI) + timedelta(days=1)).replace(hour=0, minute=0)
    await page.get_by_role("button", name="+ 添加例外安排").click()
    leave = page.get_by_role("group", name=f"例外安排 {len(before['exceptions']) + 1}")
    await expect(leave.get_by_label("类型")).to_have_value("leave")
    await leave.get_by_label("开始").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
    await leave.get_by_label("结束").fill((tomorrow - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await save.click()
    await expect(page.get_by_role("alert")).to_be_visible()
    assert (await expert_api.get(path))[1] == before

    # Three days' leave from tomorrow: saved, and the preview shows the slots it blocks.
    await leave.get_by_label("结束").fill((tomorrow + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"))
    await save.click()
    await expect(page.locator(".toast")).to_have_text("出诊时间已保存，可约时段已更新。")
    await expect(page.get_by_role("alert")).to_have_count(0)
    status, after = await expert_api.get(path)
    def hours(av: dict) -> list:
        return sorted(av["weekly"], key=lambda r: (r["weekday"], r["start"]))

    assert status == 200 and hours(after) == hours(before), after
    assert after["timezone"] == "Asia/Chongqing"
    assert len(after["exceptions"]) == len(before["exceptions"]) + 1
    start = tomorrow.replace(second=0, microsecond=0)
    added = [x for x in after["exceptions"] if datetime.fromisoformat(x["start"]) == start]
    assert [(x["kind"], datetime.fromisoformat(x["end"])) for x in added] == [("leave", start + timedelta(days=3))]
    blocked = await page.locator("table.preview td.count-blocked").all_inner_texts()
    assert sum(int(n) for n in blocked) > 0, blocked
    assert page.js_errors == []
