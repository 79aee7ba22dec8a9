"""The Administration screens in Chromium: the admin creates an institution (a duplicate name
refused first) with a department, then an alliance with its members; the import page lists the
bad rows of a file; a coordinator is offered only what they may change, a doctor no
Administration at all. Screenshots go to /tmp/shots-admin/ (or YILIAN_SHOTS)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.async_api import Page, expect

from tests.e2e.test_layout import login_zh as login
from tests.server.import_files import csv_bytes

SHOTS = Path(os.environ.get("YILIAN_SHOTS", "/tmp/shots-admin"))


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_admin_creates_an_institution_and_an_alliance(new_page, api) -> None:  # noqa: PLR0915 - one story
    admin_api = await api.login("admin")
    ids = {i["name"]: i["id"] for i in (await admin_api.get("/api/institutions"))[1]}
    page = await new_page()
    await login(page, "admin")
    await page.get_by_role("navigation", name="主导航").get_by_role("link", name="管理").click()
    await expect(page).to_have_url(re.compile(r"#/admin$"))
    tree = page.get_by_role("tree", name="按层级排列的机构")
    await expect(tree.get_by_text("沙琅镇中心卫生院")).to_be_visible()

    # A duplicate name is refused in the dialog, and nothing is created.
    await page.get_by_role("button", name="新建机构").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("名称（英文或拼音）").fill("Shalang Town Central Health Centre")
    await dialog.get_by_label("层级").select_option("township")
    await dialog.get_by_role("button", name="创建机构").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("该名称已被使用。")
    await dialog.get_by_label("名称（英文或拼音）").fill("Xiadong Town Health Centre")
    await dialog.get_by_label("中文名称").fill("霞洞镇卫生院")
    # only institutions of a higher level are offered as parents
    parent = dialog.get_by_label("上级机构")
    assert str(ids["Shangtang Village Clinic"]) not in await parent.locator("option").evaluate_all(
        "os => os.map(o => o.value)")
    await parent.select_option(str(ids["Dianbai District People's Hospital"]))
    await shot(page, "admin-institution-dialog-zh")
    await dialog.get_by_role("button", name="创建机构").click()
    await expect(page.get_by_role("heading", name="霞洞镇卫生院")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"#/admin/institutions\?id=\d+$"))
    dianbai = ids["Dianbai District People's Hospital"]
    node = tree.locator(f'li[data-institution="{dianbai}"] > ul > li').filter(
        has_text="霞洞镇卫生院")
    await expect(node).to_be_visible()

    await page.get_by_role("button", name="添加科室").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("科室名称").fill("全科")
    await dialog.get_by_label("专科").select_option("general_practice")
    await dialog.get_by_role("button", name="添加科室").click()
    await expect(page.locator("tr[data-department]").filter(has_text="全科")).to_be_visible()
    await shot(page, "admin-institutions-zh")

    # An alliance: a specialty alliance needs its specialty; then the members.
    await page.get_by_role("navigation", name="管理分区").get_by_role("link", name="医联体").click()
    await page.get_by_role("button", name="新建医联体").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("名称").fill("粤西胸痛专科联盟")
    await dialog.get_by_label("类型").select_option("specialty")
    await dialog.get_by_label("牵头机构").select_option(str(ids["Dianbai District People's Hospital"]))
    await dialog.get_by_label("专科").select_option("cardiology")
    await dialog.get_by_role("button", name="创建医联体").click()
    card = page.locator("article.alliance-card").filter(has_text="粤西胸痛专科联盟")
    await expect(card).to_contain_text("1 家成员机构")
    await card.get_by_role("button", name="成员机构").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("筛选机构").fill("霞洞")
    await dialog.get_by_label("霞洞镇卫生院").check()
    await shot(page, "admin-members-zh")
    await dialog.get_by_role("button", name="保存").click()
    await expect(card).to_contain_text("2 家成员机构")
    await shot(page, "admin-alliances-zh")
    status, alliances = await admin_api.get("/api/alliances")
    made = next(a for a in alliances if a["name"] == "粤西胸痛专科联盟")
    assert made["kind"] == "specialty" and made["specialty"] == "cardiology"
    assert len(made["member_ids"]) == 2

    # The import page lists every bad row and imports nothing.
    await page.get_by_role("navigation", name="管理分区").get_by_role("link", name="批量导入").click()
    await page.get_by_label("用户", exact=True).set_input_files(files=[{
        "name": "users.csv", "mimeType": "text/csv", "buffer": csv_bytes([
            ["username", "display_name", "role", "institution"],
            ["new_doc", "新医生", "村医", "霞洞镇卫生院"],
            ["township", "重复", "township_doctor", "沙琅镇中心卫生院"],
            ["x", "", "nurse", "Nowhere"]])}])
    await page.get_by_role("button", name="检查（试运行）").click()
    report = page.locator("table.import-report")
    await expect(report.locator("tbody tr")).to_have_count(5)
    await expect(page.get_by_role("button", name="正式导入")).to_be_disabled()
    await shot(page, "admin-import-report-zh")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "admin-import-report-phone-zh")

    # English, laptop and phone
    await page.set_viewport_size({"width": 1366, "height": 768})
    await page.locator(".lang-switch").click()
    await page.get_by_role("navigation", name="Administration sections").get_by_role(
        "link", name="Institutions").click()
    await page.get_by_role("tree").get_by_text("Xiadong Town Health Centre").click()
    await expect(page.get_by_role("heading", name="Xiadong Town Health Centre")).to_be_visible()
    await shot(page, "admin-institutions-en")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "admin-institutions-phone-en")
    await page.get_by_role("navigation", name="Administration sections").get_by_role(
        "link", name="Modalities").click()
    await expect(page.locator("tr[data-modality]").filter(has_text="SHALANG_DR")).to_be_visible()
    await shot(page, "admin-modalities-phone-en")
    assert page.js_errors == []  # type: ignore[attr-defined]


async def test_each_role_is_offered_only_what_it_may_do(new_page) -> None:
    page = await new_page()
    await login(page, "coordinator")
    nav = page.get_by_role("navigation", name="主导航")
    await nav.get_by_role("link", name="管理").click()
    await expect(page.get_by_role("tree").get_by_text("沙琅镇中心卫生院")).to_be_visible()
    await expect(page.get_by_role("button", name="新建机构")).to_have_count(0)
    await page.get_by_role("tree").get_by_text("桂林市人民医院").click()
    await expect(page.get_by_text("您只能查看该机构")).to_be_visible()
    await expect(page.get_by_role("button", name="添加科室")).to_have_count(0)
    await page.get_by_role("tree").get_by_text("沙琅镇中心卫生院").click()
    await expect(page.get_by_role("button", name="添加科室")).to_be_visible()
    tabs = page.get_by_role("navigation", name="管理分区")
    await expect(tabs.get_by_role("link", name="批量导入")).to_have_count(0)
    await tabs.get_by_role("link", name="医联体").click()
    await expect(page.locator("article.alliance-card").first).to_be_visible()
    await expect(page.get_by_role("button", name="新建医联体")).to_have_count(0)
    await shot(page, "coordinator-alliances-zh")
    # The Guangdong coordinator is not offered Guilin's experts' availability.
    await nav.get_by_role("link", name="出诊时间").click()
    options = await page.locator("#expert-picker option").all_inner_texts()
    assert any("周建华" in o for o in options), options
    assert not any("覃波" in o for o in options), options
    assert page.js_errors == []  # type: ignore[attr-defined]

    doctor = await new_page()
    await login(doctor, "village")
    await expect(doctor.get_by_role("navigation", name="主导航").get_by_role(
        "link", name="管理")).to_have_count(0)
    await doctor.goto("/#/admin")
    await expect(doctor.get_by_role("alert")).to_contain_text("管理功能仅限")
