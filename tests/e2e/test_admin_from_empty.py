"""A new install, as a hospital runs it: an empty data directory, ``yilian serve`` and
``yilian admin create-user`` as real processes, then in Chromium (Chinese, the default) the
administrator creates a township health centre, a provincial hospital, an alliance of both, a
township doctor and an expert; the expert chooses a password and sets their hours; the township
doctor chooses a password and books a consultation in one of those hours. No demo data is
involved. Screenshots go to /tmp/shots-from-empty/ (or YILIAN_SHOTS)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import PG_URL, _pg_admin, _pg_url, base_settings
from tests.e2e.conftest import TIMEOUT_MS, launched_chromium
from tests.server.live import live_server
from yilian.server.core.settings import Settings

SHOTS = Path(os.environ.get("YILIAN_SHOTS", "/tmp/shots-from-empty"))
ADMIN_PASSWORD = "maoming-admin-2026"
TEMPORARY = {"chenli": "chen-temporary-31", "linhai": "lin-temporary-47"}
CHOSEN = {"chenli": "chenli-own-secret-9", "linhai": "linhai-own-secret-8"}


@pytest.fixture
def empty_settings(tmp_path: Path) -> Iterator[Settings]:
    """An empty data directory (and, on PostgreSQL, an empty database): no template."""
    if not PG_URL:
        yield base_settings(tmp_path / "data")
        return
    name = f"yilian_empty_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    yield base_settings(tmp_path / "data", _pg_url(name))
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_server(empty_settings: Settings) -> Iterator[str]:
    """``yilian serve`` on the empty install; yields its base URL."""
    assert not empty_settings.data_dir.exists()
    with live_server(empty_settings) as base:
        yield base


@pytest.fixture
async def chromium(empty_server: str) -> AsyncIterator[Browser]:
    async with launched_chromium() as browser:
        yield browser


def create_first_admin(settings: Settings) -> str:
    args = [sys.executable, "-m", "yilian.server.cli", "--log-level", "WARNING", "admin",
            "create-user", "--username", "admin", "--display-name", "王建国", "--role", "admin",
            "--institution", "Maoming Health Information Centre", "--institution-level", "city",
            "--data-dir", str(settings.data_dir)]
    if settings.database_url:
        args += ["--database-url", settings.database_url]
    result = subprocess.run(args, input=ADMIN_PASSWORD + "\n", capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-page
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def log_in(page: Page, username: str, password: str) -> None:
    await page.goto("/")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()


async def choose_password(page: Page, username: str) -> None:
    """First login with the temporary password: nothing else until a password is chosen."""
    await log_in(page, username, TEMPORARY[username])
    await expect(page).to_have_url(re.compile(r"#/password$"))
    await expect(page.get_by_role("heading", name="设置您的密码")).to_be_visible()
    await shot(page, f"{username}-1-choose-password")
    if username == "chenli":  # on a phone too
        await page.set_viewport_size({"width": 390, "height": 844})
        await shot(page, f"{username}-1-choose-password-phone")
        await page.set_viewport_size({"width": 1366, "height": 768})
    await page.get_by_label("临时密码").fill(TEMPORARY[username])
    await page.get_by_label("新密码", exact=True).fill(CHOSEN[username])
    await page.get_by_label("再次输入新密码").fill(CHOSEN[username])
    await page.get_by_role("button", name="保存并继续").click()
    await expect(page.locator("#logout")).to_be_attached()
    await expect(page).not_to_have_url(re.compile(r"#/password$"))


async def create_institution(page: Page, name: str, local: str, level: str) -> None:
    await page.get_by_role("button", name="新建机构").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("名称（英文或拼音）").fill(name)
    await dialog.get_by_label("中文名称").fill(local)
    await dialog.get_by_label("层级").select_option(level)
    await dialog.get_by_role("button", name="创建机构").click()
    await expect(page.get_by_role("heading", name=local)).to_be_visible()


async def create_account(page: Page, username: str, name: str, role: str, institution: str,
                         *, specialties: str = "", title: str = "", department: str = "") -> None:
    await page.goto("/#/users/new")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("姓名", exact=True).fill(name)
    await page.get_by_label("角色").select_option(role)
    choice = page.get_by_label("机构")
    await choice.select_option(await choice.locator("option", has_text=institution).get_attribute(
        "value"))
    if specialties:
        await page.get_by_label("专科").fill(specialties)
    if title:
        await page.get_by_label("职称").fill(title)
    if department:
        await page.get_by_label("科室").fill(department)
    await page.get_by_label("临时密码").fill(TEMPORARY[username])
    await shot(page, f"admin-5-new-{role}")
    await page.get_by_role("button", name="创建账号").click()
    await expect(page.get_by_role("heading", name=f"账号：{name}")).to_be_visible()
    await expect(page.locator("[data-state='must_change']")).to_have_count(1)


async def test_a_new_install_from_an_empty_data_directory(  # noqa: PLR0915 - one story
        empty_settings: Settings, empty_server: str, chromium: Browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the browser
    line = await asyncio.to_thread(create_first_admin, empty_settings)
    assert "created admin 'admin'" in line, line

    async def context_page() -> Page:
        context = await chromium.new_context(viewport={"width": 1366, "height": 768},
                                             base_url=empty_server, timezone_id="Asia/Shanghai",
                                             locale="zh-CN")
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    # The administrator: two institutions, an alliance of both, two accounts.
    admin = await context_page()
    await log_in(admin, "admin", ADMIN_PASSWORD)
    await expect(admin.locator("#logout")).to_be_attached()
    await shot(admin, "admin-1-first-login")
    await admin.get_by_role("navigation", name="主导航").get_by_role("link", name="管理").click()
    await expect(admin).to_have_url(re.compile(r"#/admin$"))
    await create_institution(admin, "Xiadong Town Health Centre", "霞洞镇卫生院", "township")
    await create_institution(admin, "Guangdong Provincial People's Hospital", "广东省人民医院",
                             "province")
    await admin.get_by_role("button", name="添加科室").click()
    dialog = admin.get_by_role("dialog")
    await dialog.get_by_label("科室名称").fill("心血管内科")
    await dialog.get_by_label("专科").select_option("cardiology")
    await dialog.get_by_role("button", name="添加科室").click()
    await expect(admin.locator("tr[data-department]").filter(has_text="心血管内科")).to_be_visible()
    await shot(admin, "admin-2-institutions")

    await admin.get_by_role("navigation", name="管理分区").get_by_role("link", name="医联体").click()
    await admin.get_by_role("button", name="新建医联体").click()
    dialog = admin.get_by_role("dialog")
    await dialog.get_by_label("名称").fill("粤西心血管专科联盟")
    await dialog.get_by_label("类型").select_option("specialty")
    lead = dialog.get_by_label("牵头机构")
    await lead.select_option(await lead.locator("option", has_text="广东省人民医院").get_attribute(
        "value"))
    await dialog.get_by_label("专科").select_option("cardiology")
    await shot(admin, "admin-3-alliance-dialog")
    await dialog.get_by_role("button", name="创建医联体").click()
    card = admin.locator("article.alliance-card").filter(has_text="粤西心血管专科联盟")
    await expect(card).to_contain_text("1 家成员机构")
    await card.get_by_role("button", name="成员机构").click()
    dialog = admin.get_by_role("dialog")
    await dialog.get_by_label("霞洞镇卫生院").check()
    await dialog.get_by_role("button", name="保存").click()
    await expect(card).to_contain_text("2 家成员机构")
    await shot(admin, "admin-4-alliances")

    await create_account(admin, "linhai", "林海", "specialist", "广东省人民医院",
                         specialties="cardiology", title="主任医师", department="心血管内科")
    await create_account(admin, "chenli", "陈丽", "township_doctor", "霞洞镇卫生院")
    await admin.goto("/#/users")
    await expect(admin.locator("tr[data-username='chenli']")).to_have_count(1)
    await shot(admin, "admin-6-users")

    # The expert: a password of their own, then Monday to Sunday mornings.
    expert = await context_page()
    await choose_password(expert, "linhai")
    await expert.get_by_role("navigation", name="主导航").get_by_role("link", name="出诊时间").click()
    await expect(expert.get_by_role("heading", name="出诊时间")).to_be_visible()
    for n in range(1, 8):
        await expert.get_by_role("button", name="+ 添加出诊时间").click()
        await expert.get_by_label(f"第 {n} 条：星期").select_option(str(n - 1))
        await expert.get_by_label(f"第 {n} 条：开始").fill("08:00")
        await expert.get_by_label(f"第 {n} 条：结束").fill("20:00")
    await expert.get_by_role("button", name="保存出诊时间").click()
    await expect(expert.locator(".toast")).to_have_text("出诊时间已保存，可约时段已更新。")
    free = expert.locator("table.preview td").filter(has_text=re.compile(r"^[1-9]\d*$"))
    await expect(free.first).to_be_visible()
    await shot(expert, "linhai-2-availability")

    # The township doctor: a password of their own, then finds the expert and books.
    doctor = await context_page()
    await choose_password(doctor, "chenli")
    await doctor.get_by_role("navigation", name="主导航").get_by_role("link", name="找专家").click()
    card = doctor.locator("article.expert-card").filter(has_text="林海")
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("广东省人民医院")
    await shot(doctor, "chenli-2-experts")
    await card.get_by_role("link", name="全部时段").click()
    await expect(doctor).to_have_url(re.compile(r"#/experts/\d+$"))
    slot = doctor.locator("a.slot-btn.free").first
    slot_id = await slot.get_attribute("data-slot-id")
    await shot(doctor, "chenli-3-slots")
    await slot.click()
    await expect(doctor).to_have_url(re.compile(rf"#/request\?expert=\d+&slot={slot_id}$"))
    await doctor.get_by_label("登记新患者").check()
    await doctor.get_by_label("姓名", exact=True).fill("黄秀英")
    await doctor.get_by_label("性别").select_option("female")
    await doctor.get_by_label("出生日期").fill("1958-03-14")
    await doctor.get_by_label("会诊目的与病情摘要").fill(
        "反复胸闷两周，活动后加重；心电图示 ST 段压低。请评估是否需转诊行冠脉造影。")
    await shot(doctor, "chenli-4-request")
    await doctor.get_by_role("button", name="提交申请").click()
    await expect(doctor).to_have_url(re.compile(r"#/consultations/\d+$"))
    await expect(doctor.get_by_role("main")).to_contain_text("林海")
    await shot(doctor, "chenli-5-booked")

    # The expert sees it in their queue.
    await expert.get_by_role("navigation", name="主导航").get_by_role("link", name="待办").click()
    await expect(expert.get_by_role("main")).to_contain_text("黄秀英")
    await shot(expert, "linhai-3-queue")
    for page in (admin, expert, doctor):
        assert page.js_errors == []  # type: ignore[attr-defined]
