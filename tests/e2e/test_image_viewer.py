"""The light image preview through the browser: a non-square DR lies wholly inside the viewport
at Fit (and again after a resize), pan moves it, zoom keeps the point under the cursor; a CT
preset then a window/level drag shows "custom"; the series scrolls; a slide offers OHIF and
its thumbnail only. Texts are checked against the language tables (Chinese, the default)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from playwright.async_api import Page, expect

from tests.conftest import Api
from yilian.dicom.multipart import build_multipart, new_boundary
from yilian.dicom.synth import dr_image, to_bytes

LOCALES = Path(__file__).resolve().parents[2] / "web" / "locales"


def text(namespace: str, key: str, lang: str = "zh-CN", **params: Any) -> str:
    """A string of the web client's language tables, placeholders filled."""
    table = json.loads((LOCALES / lang / f"{namespace}.json").read_text(encoding="utf-8"))
    out = table[key]
    for name, value in params.items():
        out = out.replace("{" + name + "}", str(value))
    return out


async def open_as(api: Api, new_page: Any, username: str, width: int = 1366,
                  height: int = 768, lang: str = "zh-CN") -> tuple[Page, Api]:
    """A browser page signed in as ``username`` (the session the login page would store), in
    the language last chosen in this browser (``lang``)."""
    who = await api.login(username)
    page = await new_page(width, height)
    user = {k: v for k, v in who.user.items() if k != "locale"}
    script = (f"sessionStorage.setItem('yilian.token', {json.dumps(who.token)});"
              f"sessionStorage.setItem('yilian.user', {json.dumps(json.dumps(user))});"
              f"localStorage.setItem('yilian.locale', {json.dumps(lang)});")
    await page.context.add_init_script(script)
    return page, who


async def stow_files(who: Api, files: list[bytes]) -> tuple[int, Any]:
    """STOW-RS files in one request, as a PACS would."""
    boundary = new_boundary()
    body = build_multipart([(f, {"Content-Type": "application/dicom"}) for f in files], boundary)
    async with who.http.post(who.url("/dicomweb/studies"), data=body, headers=who.headers({
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json"})) as resp:
        return resp.status, await resp.json(content_type=None)


def study_uid_of(doc: dict[str, Any]) -> str:
    url = doc["00081199"]["Value"][0]["00081190"]["Value"][0]
    return url.split("/studies/")[1].split("/")[0]


def tall_dr(rows: int = 800, cols: int = 600, patient: dict[str, str] | None = None) -> bytes:
    """A DR radiograph taller than wide, cut from the synthetic chest image."""
    ds = pydicom.dcmread(io.BytesIO(dr_image(rows, patient=patient)))
    start = (rows - cols) // 2
    pixels = np.ascontiguousarray(ds.pixel_array[:, start:start + cols])
    ds.Rows, ds.Columns = rows, cols
    ds.PixelData = pixels.astype("<u2").tobytes()
    return to_bytes(ds)


async def own_open_case(who: Api) -> dict[str, Any]:
    """One of this requester's consultations that still takes studies."""
    status, rows = await who.get("/api/consultations")
    assert status == 200, rows
    return next(c for c in rows if c["requester_id"] == who.user["id"]
                and c["status"] in ("requested", "accepted", "in_progress"))


async def geometry(page: Page) -> dict[str, float]:
    """The canvas box and the drawn image's rectangle (CSS pixels, canvas coordinates)."""
    return await page.locator("[data-testid=preview-canvas]").evaluate("""(c) => {
      const r = c.getBoundingClientRect();
      const d = c.dataset;
      return { left: r.left, top: r.top, width: r.width, height: r.height,
        x: Number(d.drawX), y: Number(d.drawY), w: Number(d.drawW), h: Number(d.drawH),
        scale: Number(d.scale), fit: Number(d.fitScale) };
    }""")


def assert_inside(g: dict[str, float]) -> None:
    assert g["x"] >= -0.5 and g["y"] >= -0.5, g
    assert g["x"] + g["w"] <= g["width"] + 0.5 and g["y"] + g["h"] <= g["height"] + 0.5, g
    # Fit: one side touches the viewport's edges, the image centred in the other.
    assert abs(g["w"] - g["width"]) < 1 or abs(g["h"] - g["height"]) < 1, g
    assert abs(g["x"] * 2 + g["w"] - g["width"]) < 1 and abs(g["y"] * 2 + g["h"] - g["height"]) < 1, g


async def test_a_tall_dr_fits_wholly_then_pans_and_zooms_about_the_cursor(new_page, api) -> None:
    village = await api.login("village")
    status, doc = await stow_files(village, [tall_dr(patient={"name": "Wu^Lan", "id": "PV-1"})])
    assert status == 200, doc
    uid = study_uid_of(doc)
    case = await own_open_case(village)
    status, body = await village.post(f"/api/consultations/{case['id']}/studies", {"study_uid": uid})
    assert status == 200, body

    page, _ = await open_as(api, new_page, "village")
    await page.goto(f"/#/consultations/{case['id']}/studies/{uid}")
    canvas = page.locator("[data-testid=preview-canvas]")
    await expect(canvas).to_have_attribute("data-loaded", re.compile(rf"/studies/{uid}/.*/rendered$"))
    await expect(page.locator(".pv-counter")).to_have_text(text("viewer", "counter", n=1, total=1))
    g = await geometry(page)
    assert_inside(g)
    assert abs(g["w"] / g["h"] - 600 / 800) < 0.01, g  # the aspect ratio is kept
    assert abs(g["h"] - g["height"]) < 1, g  # a tall image fills the height, letterboxed
    await page.screenshot(path="/tmp/preview-dr-1366.png")

    # Pan: a drag with the pan tool (the default) moves the image by the drag.
    cx, cy = g["left"] + g["width"] / 2, g["top"] + g["height"] / 2
    await page.mouse.move(cx, cy)
    await page.mouse.down()
    await page.mouse.move(cx + 60, cy + 20, steps=4)
    await page.mouse.move(cx + 120, cy + 40, steps=4)
    await page.mouse.up()
    moved = await geometry(page)
    assert abs(moved["x"] - (g["x"] + 120)) < 1.5 and abs(moved["y"] - (g["y"] + 40)) < 1.5, moved
    assert moved["scale"] == g["scale"]

    # Zoom with the wheel about the cursor: the image point under it stays under it.
    px, py = g["left"] + g["width"] * 0.3, g["top"] + g["height"] * 0.7
    before = await geometry(page)
    u = ((px - before["left"]) - before["x"]) / before["scale"]
    v = ((py - before["top"]) - before["y"]) / before["scale"]
    await page.mouse.move(px, py)
    await page.mouse.wheel(0, -240)
    await page.wait_for_function("(s) => Number(document.querySelector('[data-testid=preview-canvas]').dataset.scale) > s",
                                 arg=before["scale"] * 1.2)
    after = await geometry(page)
    assert abs(((px - after["left"]) - after["x"]) / after["scale"] - u) < 1, (before, after)
    assert abs(((py - after["top"]) - after["y"]) / after["scale"] - v) < 1, (before, after)

    # The buttons zoom about the centre; Fit brings the whole image back.
    await page.get_by_test_id("zoom-in").click()
    bigger = await geometry(page)
    assert abs(bigger["scale"] / after["scale"] - 1.25) < 0.02, (after, bigger)
    await page.get_by_test_id("zoom-fit").click()
    assert_inside(await geometry(page))

    # A phone: the stage shrinks and the image is fitted again, still wholly inside.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_function("() => { const c = document.querySelector('[data-testid=preview-canvas]');"
                                 " return c.getBoundingClientRect().width < 390; }")
    await page.wait_for_function("(w) => Number(document.querySelector('[data-testid=preview-canvas]').dataset.drawW) < w",
                                 arg=g["w"] - 1)
    small = await geometry(page)
    assert_inside(small)
    assert abs(small["w"] - small["width"]) < 1, small  # narrow now: the width is the limit
    await page.screenshot(path="/tmp/preview-dr-390.png", full_page=True)
    assert page.js_errors == []


async def test_ct_presets_custom_window_series_scroll_and_the_slide(new_page, api) -> None:
    page, expert = await open_as(api, new_page, "expert")
    status, rows = await expert.get("/api/consultations", params={"status": "in_progress"})
    assert status == 200, rows
    case = next(c for c in rows if len(c["study_uids"]) >= 2)
    await page.goto(f"/#/consultations/{case['id']}")
    panel = page.locator("#studies-panel")
    await expect(panel.locator("li[data-study-uid]")).to_have_count(len(case["study_uids"]))
    # Every study offers the preview and OHIF, side by side.
    await expect(panel.get_by_test_id("open-ohif")).to_have_count(len(case["study_uids"]))
    await expect(panel.get_by_test_id("preview")).to_have_count(len(case["study_uids"]))
    ct = panel.locator("li[data-modalities='CT']")
    await expect(ct.locator(".study-about")).to_contain_text(text("studies", "image_count", n=12))
    # OHIF opens in the reading window: the viewer for the CT, microscopy for the slide.
    for modality, mode in (("CT", "viewer"), ("SM", "microscopy")):
        async with page.expect_popup() as opened:
            await panel.locator(f"li[data-modalities='{modality}']").get_by_test_id("open-ohif").click()
        popup = await opened.value
        assert f"/ohif/{mode}?StudyInstanceUIDs=" in popup.url, popup.url
        await popup.close()
    await ct.get_by_test_id("preview").click()
    await expect(page).to_have_url(re.compile(r"/studies/[0-9.]+$"))

    counter = page.locator(".pv-counter")
    canvas = page.locator("[data-testid=preview-canvas]")
    await expect(counter).to_have_text(text("viewer", "counter", n=7, total=12))
    await expect(canvas).to_have_attribute("data-index", "6")
    await expect(page.locator(".pv-series-btn")).to_contain_text("Chest axial")
    first_sop = await canvas.get_attribute("data-sop")

    # A CT preset is rendered by the server with window=.
    preset = page.locator("select.pv-preset")
    await preset.select_option("lung")
    await expect(page.locator(".pv-wl")).to_have_text(text("viewer", "wl_readout", width=1500, center=-600))
    await expect(canvas).to_have_attribute("data-loaded", re.compile(r"window=-600%2C1500$"))

    # A right-drag changes window/level; the preset box then says "custom", never blank.
    g = await geometry(page)
    cx, cy = g["left"] + g["width"] / 2, g["top"] + g["height"] / 2
    await page.mouse.move(cx, cy)
    await page.mouse.down(button="right")
    await page.mouse.move(cx - 40, cy + 30, steps=5)
    await page.mouse.up(button="right")
    await expect(preset).to_have_value("custom")
    assert await preset.evaluate("(s) => s.selectedOptions[0].textContent") == text("viewer", "preset_custom")
    assert await preset.evaluate("(s) => s.selectedOptions[0].hidden") is False
    await expect(page.locator(".pv-stage")).to_have_attribute("data-preset", "custom")
    await expect(canvas).to_have_attribute("data-loaded", re.compile(r"window=-?[0-9]+%2C[0-9]+$"))
    loaded = await canvas.get_attribute("data-loaded") or ""
    assert not loaded.endswith("window=-600%2C1500"), loaded
    await expect(page.locator(".pv-wl")).not_to_have_text(text("viewer", "wl_readout", width=1500, center=-600))
    # The W/L tool does the same with the left button.
    await page.locator("[data-tool=wl]").click()
    await page.mouse.move(cx, cy)
    await page.mouse.down()
    await page.mouse.move(cx + 30, cy - 10, steps=3)
    await page.mouse.up()
    await expect(preset).to_have_value("custom")

    # Scrolling the series: arrow keys, the wheel with the scroll tool, End; each shows
    # another instance, fetched with the same window.
    await page.locator(".pv-stage").focus()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    await expect(counter).to_have_text(text("viewer", "counter", n=9, total=12))
    await expect(canvas).to_have_attribute("data-index", "8")
    assert await canvas.get_attribute("data-sop") != first_sop
    await page.locator("[data-tool=stack]").click()
    await page.mouse.move(cx, cy)
    await page.mouse.wheel(0, 100)
    await expect(counter).to_have_text(text("viewer", "counter", n=10, total=12))
    await page.locator(".pv-stage").focus()
    await page.keyboard.press("End")
    await expect(canvas).to_have_attribute("data-index", "11")
    await expect(page.locator(".pv-slider")).to_have_value("12")
    await page.screenshot(path="/tmp/preview-ct-1366.png")

    # The slide: its thumbnail only, and OHIF's microscopy mode.
    await page.goto(f"/#/consultations/{case['id']}")
    await page.locator("#studies-panel li[data-modalities='SM']").get_by_test_id("preview").click()
    thumb = page.get_by_test_id("slide-thumbnail")
    await page.wait_for_function("() => { const i = document.querySelector('[data-testid=slide-thumbnail]');"
                                 " return !!i && i.complete && i.naturalWidth > 0; }")
    await expect(thumb).to_be_visible()
    await expect(page.locator(".pv-main").get_by_test_id("open-ohif")).to_have_text(text("viewer", "open_ohif_microscopy"))
    await expect(page.locator("[data-testid=preview-canvas]")).to_have_count(0)
    await expect(page.locator(".slide-tile")).to_have_count(0)
    await page.screenshot(path="/tmp/preview-slide-1366.png")
    assert page.js_errors == []


async def test_a_study_not_shared_with_the_case_is_not_previewed(new_page, api) -> None:
    village = await api.login("village")
    status, doc = await stow_files(village, [tall_dr(400, 300)])
    assert status == 200, doc
    case = await own_open_case(village)
    page, _ = await open_as(api, new_page, "village", lang="en")
    await page.goto(f"/#/consultations/{case['id']}/studies/{study_uid_of(doc)}")
    await expect(page.locator(".empty")).to_have_text(text("viewer", "not_shared", "en"))
    await expect(page.locator("h1")).to_have_text(text("viewer", "title", "en", id=case["id"]))
    await expect(page.locator("[data-testid=preview-canvas]")).to_have_count(0)
    assert page.js_errors == []


async def test_pinch_zooms_about_the_fingers(new_page, api) -> None:
    village = await api.login("village")
    status, doc = await stow_files(village, [tall_dr(400, 300)])
    assert status == 200, doc
    uid = study_uid_of(doc)
    case = await own_open_case(village)
    status, body = await village.post(f"/api/consultations/{case['id']}/studies", {"study_uid": uid})
    assert status == 200, body
    page, _ = await open_as(api, new_page, "village", 390, 844)
    await page.goto(f"/#/consultations/{case['id']}/studies/{uid}")
    await expect(page.locator("[data-testid=preview-canvas]")).to_have_attribute("data-loaded", re.compile("rendered"))
    g = await geometry(page)
    assert_inside(g)
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 2})
    mx, my = g["left"] + g["width"] / 2, g["top"] + g["height"] / 2
    u = ((mx - g["left"]) - g["x"]) / g["scale"]

    def touches(spread: float) -> list[dict[str, float]]:
        return [{"x": mx - spread, "y": my, "id": 0}, {"x": mx + spread, "y": my, "id": 1}]

    await cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": touches(40)})
    for spread in (60, 80, 100, 120):
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": touches(spread)})
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    after = await geometry(page)
    assert abs(after["scale"] / g["scale"] - 3) < 0.1, (g, after)  # fingers 80 -> 240 px apart
    assert abs(((mx - after["left"]) - after["x"]) / after["scale"] - u) < 1, (g, after)
    assert page.js_errors == []
