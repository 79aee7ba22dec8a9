"""Signing with the password and the printed report, in real Chromium: the expert writes the
report, a wrong password shows the localised error and signs nothing, the right one signs; the
print layout carries the institutions, the signer's title, the signed time, the version and a
signature area, hides the application around it, and prints as one A4 page."""

from __future__ import annotations

import re
import zlib

from playwright.async_api import Page, expect

from tests.conftest import Api
from tests.server.helpers import book
from yilian.server.demo import DEMO_PASSWORD

FINDINGS = "窦性心律，心率 72 次/分；V4–V6 导联 ST 段压低 0.1 mV。"
IMPRESSION = "稳定型心绞痛（CCS II 级）。"
RECOMMENDATIONS = "阿司匹林 100 mg 每日一次，阿托伐他汀 20 mg 每晚一次；建议行运动平板试验。"
CORRECTION = "稳定型心绞痛（CCS II 级），建议冠脉 CTA。"
A4_POINTS = (595.28, 841.89)  # 210 x 297 mm


async def login(page: Page, username: str) -> None:
    """Log in through the form (by field names, whatever the language)."""
    await page.goto("/")
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(DEMO_PASSWORD)
    await page.locator(".login-form button[type=submit]").click()
    await expect(page.locator("#logout")).to_be_visible()


async def in_progress(api: Api) -> int:
    """A consultation of the village clinic with the cardiology expert, started."""
    village, expert = await api.login("village"), await api.login("expert")
    cid = (await book(village, expert.user["id"]))["id"]
    assert (await expert.post(f"/api/consultations/{cid}/accept", {}))[0] == 200
    assert (await village.post(f"/api/consultations/{cid}/start"))[0] == 200
    return cid


def _pdf_objects(pdf: bytes) -> dict[int, bytes]:
    return {int(n): body for n, body in re.findall(rb"(\d+) 0 obj(.*?)endobj", pdf, re.S)}


def _stream(body: bytes) -> bytes:
    data = body[body.index(b"stream") + 6:body.rindex(b"endstream")].lstrip(b"\r\n")
    return zlib.decompress(data) if b"/FlateDecode" in body else data


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    """Width and height (points) of each page of a PDF."""
    sizes = []
    for body in _pdf_objects(pdf).values():
        if re.search(rb"/Type\s*/Page\b(?!s)", body):
            box = re.search(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)",
                            body)
            assert box, body[:200]
            x0, y0, x1, y1 = (float(v) for v in box.groups())
            sizes.append((x1 - x0, y1 - y0))
    return sizes


def _to_unicode(cmap: bytes) -> tuple[int, dict[int, str]]:
    """A font's ToUnicode table: the width of its codes (hex digits) and code -> text."""
    space = re.search(rb"begincodespacerange\s*<([0-9A-Fa-f]+)>", cmap)
    width = len(space.group(1)) if space else 4
    table: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            table[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be", "replace")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>",
                                      block):
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                table[code] = chr(int(dst, 16) + i)
    return width, table


def pdf_text(pdf: bytes) -> list[str]:
    """The text of each page of a Chromium (Skia) PDF, in drawing order: the page's content
    stream, its glyph codes mapped through the current font's ToUnicode table, marked-content
    ActualText in place of the glyphs it covers."""
    objs = _pdf_objects(pdf)
    root = next(b for b in objs.values() if re.search(rb"/Type\s*/Pages\b", b))
    kids = re.search(rb"/Kids\s*\[([^\]]*)\]", root)
    pages = [objs[int(n)] for n in re.findall(rb"(\d+) 0 R", kids.group(1))]
    texts = []
    for body in pages:
        font_block = re.search(rb"/Font\s*<<(.*?)>>", body, re.S)
        fonts = {}
        for name, num in re.findall(rb"/([\w.+-]+)\s+(\d+) 0 R", font_block.group(1)):
            ref = re.search(rb"/ToUnicode\s+(\d+) 0 R", objs[int(num)])
            fonts[name] = _to_unicode(_stream(objs[int(ref.group(1))])) if ref else (4, {})
        contents = re.search(rb"/Contents\s+(\d+) 0 R", body)
        out: list[str] = []
        width, table, actual = 4, {}, False
        for m in re.finditer(rb"/ActualText\s*<([0-9A-Fa-f]+)>|\bEMC\b|/([\w.+-]+)\s+[\d.]+\s+Tf"
                             rb"|<([0-9A-Fa-f]*)>\s*Tj|\[([^\]]*)\]\s*TJ|\bET\b",
                             _stream(objs[int(contents.group(1))])):
            if m.group(1):
                out.append(bytes.fromhex(m.group(1).decode())[2:].decode("utf-16-be", "replace"))
                actual = True
            elif m.group(0) == b"EMC":
                actual = False
            elif m.group(0) == b"ET":
                out.append("\n")
            elif m.group(2):
                width, table = fonts.get(m.group(2), (4, {}))
            elif not actual:
                for hx in [m.group(3)] if m.group(3) is not None else \
                        re.findall(rb"<([0-9A-Fa-f]*)>", m.group(4)):
                    out.extend(table.get(int(hx[i:i + width], 16), "")
                               for i in range(0, len(hx), width))
        texts.append(re.sub(r"\s+", "", "".join(out)))  # lines wrap anywhere
    return texts


async def test_expert_signs_with_the_password_and_prints(api: Api, new_page) -> None:
    cid = await in_progress(api)
    expert = await new_page()
    await login(expert, "expert")
    await expert.goto(f"/#/consultations/{cid}")
    editor = expert.locator("form.report-editor")
    await editor.locator("textarea[name=findings]").fill(FINDINGS)
    await editor.locator("textarea[name=impression]").fill(IMPRESSION)
    await editor.locator("textarea[name=recommendations]").fill(RECOMMENDATIONS)
    await editor.get_by_role("button", name="保存草稿").click()
    await expect(expert.locator(".report-current .badge")).to_have_text("草稿")

    # A draft prints with its watermark, and the page around it is not printed.
    await expert.emulate_media(media="print")
    sheet = expert.locator(".print-report")
    await expect(sheet).to_be_visible()
    await expect(sheet.locator(".pr-watermark")).to_have_text("草稿 · 未签发")
    await expect(sheet.locator("[data-print=signed-at]")).to_contain_text("未签发")
    await expect(expert.locator("form.report-editor")).to_be_hidden()
    await expect(expert.locator("#topbar")).to_be_hidden()
    await expert.set_viewport_size({"width": 794, "height": 1123})
    await expert.screenshot(path="/tmp/report-print-draft.png", full_page=True)
    await expert.set_viewport_size({"width": 1366, "height": 768})
    await expert.emulate_media(media="screen")
    await expect(sheet).to_be_hidden()

    # Signing shows what is signed and asks for the password again.
    await editor.get_by_role("button", name="签发报告").click()
    dialog = expert.get_by_role("dialog")
    await expect(dialog.get_by_role("heading")).to_have_text("签发报告")
    await expect(dialog.locator("[data-field=version]")).to_have_text("第1版")
    await expect(dialog.locator("[data-field=impression]")).to_have_text(IMPRESSION)
    password = dialog.get_by_label("登录密码")
    await password.fill("not-my-password")
    await dialog.get_by_role("button", name="确认签发").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("密码不正确，报告未签发。")
    await expect(password).to_have_value("")  # cleared for another try
    await expect(password).to_be_focused()
    await expert.screenshot(path="/tmp/report-sign-dialog.png")
    status, body = await (await api.login("expert")).get(f"/api/consultations/{cid}/report")
    assert status == 200 and not body["current"]["signed"]  # nothing was signed
    await password.fill(DEMO_PASSWORD)
    await dialog.get_by_role("button", name="确认签发").click()
    await expect(dialog).to_be_hidden()
    current = expert.locator(".report-current")
    await expect(current.locator(".badge").first).to_have_text("已签发")
    await expect(current.locator(".report-meta")).to_contain_text("第1版 · Prof. Zhou Jianhua")
    await expect(current.locator(".esign")).to_have_text("· ✓ 电子签名已验证")
    await current.scroll_into_view_if_needed()
    await expert.screenshot(path="/tmp/report-signed-screen.png")

    # The printed report: institutions, patient, question, report, signer, version, signature.
    await expert.emulate_media(media="print")
    await expect(sheet).to_be_visible()
    await expect(sheet.locator(".pr-watermark")).to_have_count(0)
    await expect(sheet.locator("h1")).to_have_text("远程会诊报告")
    await expect(sheet.locator("[data-print=requesting-institution]")).to_contain_text("尚塘村卫生站")
    await expect(sheet.locator("[data-print=consulting-institution]")).to_contain_text("广东省人民医院")
    await expect(sheet.locator("[data-print=patient]")).to_contain_text("Zhang San")
    await expect(sheet).to_contain_text("Chest pain on exertion, what next?")
    await expect(sheet.locator("[data-print=impression]")).to_contain_text(IMPRESSION)
    await expect(sheet.locator("[data-print=signer]")).to_contain_text(
        "Prof. Zhou Jianhua (周建华) · Chief Physician")
    await expect(sheet.locator("[data-print=signer-institution]")).to_contain_text("广东省人民医院")
    await expect(sheet.locator("[data-print=signed-at]")).to_contain_text(
        re.compile(r"\d{4}年\d{1,2}月\d{1,2}日"))
    await expect(sheet.locator("[data-print=version]")).to_contain_text("第1版")
    await expect(sheet.locator(".pr-signature")).to_contain_text("医师签名：")
    await expect(sheet.locator(".pr-signature")).to_contain_text("日期：")
    await expect(sheet.locator("[data-print=esign]")).to_have_text("电子签名：已验证")
    for chrome in ("#topbar", ".page-header", ".detail-side", ".report-current",
                   "#studies-panel", ".report-correct"):
        await expect(expert.locator(chrome).first).to_be_hidden()
    await expert.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    await expert.screenshot(path="/tmp/report-print-signed.png", full_page=True)

    # As a PDF: one A4 page carrying the same text.
    pdf = await expert.pdf(path="/tmp/report-print-signed.pdf", prefer_css_page_size=True,
                           print_background=True)
    pages = pdf_pages(pdf)
    assert len(pages) == 1, pages
    assert all(abs(a - b) < 1.5 for a, b in zip(pages[0], A4_POINTS, strict=True)), pages
    [text] = pdf_text(pdf)
    for words in ("尚塘村卫生站", "广东省人民医院", "远程会诊报告", "ChiefPhysician", "第1版",
                  "会诊目的Chestpainonexertion", "稳定型心绞痛（CCSII级）", "签发时间：2026年",
                  "医师签名：", "日期：", "电子签名：已验证", "1/1"):
        assert words in text, (words, text)
    await expert.emulate_media(media="screen")
    await expert.set_viewport_size({"width": 1366, "height": 768})

    # A correction prints as a draft of version 2 that corrects version 1.
    await expert.locator(".report-correct button").click()
    await editor.locator("textarea[name=impression]").fill(CORRECTION)
    await editor.get_by_role("button", name="保存草稿").click()
    await expect(current.locator(".report-meta")).to_contain_text("第2版")
    await expert.emulate_media(media="print")
    await expect(sheet.locator("[data-print=version]")).to_contain_text("第2版（更正第1版）")
    await expect(sheet.locator(".pr-watermark")).to_be_visible()
    await expert.emulate_media(media="screen")

    # The requesting doctor prints the signed version 1 (the correction is not signed yet).
    doctor = await new_page()
    await login(doctor, "village")
    await doctor.goto(f"/#/consultations/{cid}")
    await expect(doctor.locator(".report-current [data-field=impression]")).to_have_text(IMPRESSION)
    await doctor.emulate_media(media="print")
    doc_sheet = doctor.locator(".print-report")
    await expect(doc_sheet).to_be_visible()
    await expect(doc_sheet.locator("[data-print=esign]")).to_have_text("电子签名：已验证")
    await expect(doc_sheet.locator(".pr-watermark")).to_have_count(0)
    assert expert.js_errors == [] and doctor.js_errors == []


async def test_signing_in_english(api: Api, new_page) -> None:
    """The dialog and the printed report in English, and too many wrong passwords."""
    cid = await in_progress(api)
    expert = await new_page()
    await login(expert, "expert")
    await expert.evaluate("async () => (await import('/static/js/i18n.js')).setLocale('en')")
    await expert.goto(f"/#/consultations/{cid}")
    editor = expert.locator("form.report-editor")
    await editor.locator("textarea[name=impression]").fill("Stable angina")
    await editor.get_by_role("button", name="Sign report").click()
    dialog = expert.get_by_role("dialog")
    await expect(dialog.locator("[data-field=version]")).to_have_text("Version 1")
    for _ in range(10):
        await dialog.get_by_label("Your password").fill("guess")
        await dialog.get_by_role("button", name="Sign", exact=True).click()
        await expect(dialog.get_by_role("alert")).to_have_text(
            "The password is not correct. The report was not signed.")
        await expect(dialog.get_by_role("button", name="Sign", exact=True)).to_be_enabled()
    await dialog.get_by_label("Your password").fill(DEMO_PASSWORD)
    await dialog.get_by_role("button", name="Sign", exact=True).click()
    await expect(dialog.get_by_role("alert")).to_contain_text(
        re.compile(r"Too many wrong passwords\. Try again in \d+ seconds\."))
    await dialog.get_by_role("button", name=re.compile("Cancel")).click()
    await expect(dialog).to_be_hidden()
    await expect(expert.locator(".report-current .badge")).to_have_text("Draft")
    await expert.emulate_media(media="print")
    sheet = expert.locator(".print-report")
    await expect(sheet.locator(".pr-watermark")).to_have_text("DRAFT · NOT SIGNED")
    await expect(sheet.locator("h1")).to_have_text("Teleconsultation report")
    await expect(sheet.locator(".pr-signature")).to_contain_text("Signature:")
    await expert.screenshot(path="/tmp/report-print-draft-en.png", full_page=True)
    assert expert.js_errors == []


async def test_a_long_report_breaks_between_sections(api: Api, new_page) -> None:
    """Two pages, and no section, nor the signature block, cut by the page break."""
    cid = await in_progress(api)
    expert = await api.login("expert")
    findings = "\n".join(f"第{i}项：心电图复查所见稳定，未见新发缺血改变。" for i in range(1, 31))
    status, _ = await expert.post(f"/api/consultations/{cid}/report", {
        "findings": findings, "impression": IMPRESSION, "recommendations": RECOMMENDATIONS})
    assert status == 200
    status, _ = await expert.post(f"/api/consultations/{cid}/report/sign",
                                  {"password": DEMO_PASSWORD})
    assert status == 200
    doctor = await new_page()
    await login(doctor, "village")
    await doctor.goto(f"/#/consultations/{cid}")
    await expect(doctor.locator(".report-current [data-field=impression]")).to_have_text(IMPRESSION)
    await doctor.emulate_media(media="print")
    pdf = await doctor.pdf(path="/tmp/report-print-long.pdf", prefer_css_page_size=True)
    pages = pdf_text(pdf)
    assert len(pages) == 2, pages
    # Each section is whole on one page: its heading with its first and last lines.
    whole = {"检查所见": ("第1项", "第30项"), "诊断意见": ("稳定型心绞痛", "稳定型心绞痛"),
             "处理建议": ("阿司匹林", "运动平板试验"), "签发医师": ("签发医师", "电子签名：已验证")}
    for heading, (first, last) in whole.items():
        on = [i for i, text in enumerate(pages) if heading in text]
        assert len(on) == 1, (heading, pages)
        assert first in pages[on[0]] and last in pages[on[0]], (heading, pages)
    assert pages[0].endswith("1/2") or "1/2" in pages[0]
    assert "2/2" in pages[1]
    assert doctor.js_errors == []
