"""The upload page in a real browser (Debian's chromium driven by Playwright) against a real gunicorn."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from websupport import CHROMIUM, jpeg_bytes

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (.ci/run installs it)")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def problems() -> list[str]:
    """What the page logged as errors; a test that expects one removes it."""
    return []


@pytest.fixture
def page(browser, server, problems):
    context = browser.new_context(base_url=server.http.base, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    # Anything the page logs as an error (a CSP violation, a script error, a failed request) fails the test.
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto("/")
    yield page
    context.close()
    assert problems == [], problems


def test_upload_a_photo_choose_the_region_and_see_it_8x(page):
    page.set_input_files("#file", files=[{"name": "holiday.jpg", "mimeType": "image/jpeg",
                                          "buffer": jpeg_bytes(320, 240, seed=3)}])
    page.wait_for_selector("#setup:not([hidden])")
    assert "320 × 240" in page.text_content("#photo-info")
    page.select_option("#crop-size", "48")
    box = page.locator("#thumb").bounding_box()
    click = (box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)  # photo pixel (80, 120)
    page.mouse.click(*click)
    rect = page.locator("#crop-rect").bounding_box()
    # Drawn where the click was, at the region's size on the thumbnail.
    assert abs(rect["x"] + rect["width"] / 2 - click[0]) < 3 and abs(rect["y"] + rect["height"] / 2 - click[1]) < 3
    assert abs(rect["width"] - box["width"] * 48 / 320) < 3
    x, y = map(int, re.search(r"48 × 48 px at \((\d+), (\d+)\)", page.text_content("#region-info")).groups())
    assert abs(x - 56) <= 1 and abs(y - 96) <= 1  # centred on the click, give or take layout rounding
    page.click("#start")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert page.text_content("#status-line") == "Done."
    assert page.eval_on_selector("#bar", "bar => bar.value") == 1
    page.wait_for_function("() => document.getElementById('after').complete && "
                           "document.getElementById('before').complete")
    after = page.eval_on_selector("#after", "img => [img.naturalWidth, img.naturalHeight]")
    before = page.eval_on_selector("#before", "img => [img.naturalWidth, img.naturalHeight]")
    crop = page.eval_on_selector("#result", "el => [Number(el.dataset.cropWidth), Number(el.dataset.cropHeight)]")
    assert crop == [48, 48] and after == [8 * 48, 8 * 48] == before
    facts = page.text_content("#facts")
    assert "the whole photo, 320 × 240" in facts and f"48 × 48 px at ({x}, {y}) → 384 × 384" in facts
    assert "JPEG quality about" in facts and "(measured)" in facts
    with page.expect_download() as download:
        page.click("#download")
    with Image.open(download.value.path()) as image:
        assert image.format == "PNG" and image.size == (384, 384)


def test_wrong_files_are_refused_in_plain_words(page):
    png = io.BytesIO()
    Image.new("RGB", (64, 64)).save(png, format="PNG")
    page.set_input_files("#file", files=[{"name": "photo.jpg", "mimeType": "image/jpeg",
                                          "buffer": png.getvalue()}])
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "That file is not a JPG photo. Please choose a .jpg file."
    page.set_input_files("#file", files=[{"name": "tiny.jpg", "mimeType": "image/jpeg",
                                          "buffer": jpeg_bytes(12, 12)}])
    page.wait_for_function("() => document.getElementById('error').textContent.includes('12 × 12')")
    assert page.is_hidden("#setup")


def test_server_refusal_is_shown_in_plain_words(page, problems):
    data = jpeg_bytes(200, 150, quality=95)
    # Starts like a JPEG and the browser shows what it can of it; the server finds it truncated.
    page.set_input_files("#file", files=[{"name": "cut.jpg", "mimeType": "image/jpeg",
                                          "buffer": data[: len(data) * 2 // 3]}])
    page.wait_for_selector("#setup:not([hidden])")
    page.click("#start")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "The JPEG is truncated or corrupt; please upload the whole file."
    assert page.is_visible("#start") and page.is_hidden("#running")
    problems[:] = [p for p in problems if "status of 400" not in p]


def test_browser_and_server_agree_on_exif_orientation(page):
    # Stored 96x48, shown turned a quarter: 48 wide, 96 high, in the browser and on the server alike.
    page.set_input_files("#file", files=[{"name": "phone.jpg", "mimeType": "image/jpeg",
                                          "buffer": jpeg_bytes(96, 48, orientation=6)}])
    page.wait_for_selector("#setup:not([hidden])")
    assert "48 × 96 px" in page.text_content("#photo-info")
    page.select_option("#crop-size", "48")
    page.click("#start")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert "the whole photo, 48 × 96 px" in page.text_content("#facts")


def test_the_whole_photo_at_2x_as_webp(page):
    page.set_input_files("#file", files=[{"name": "harbour.jpg", "mimeType": "image/jpeg",
                                          "buffer": jpeg_bytes(120, 90, seed=5)}])
    page.wait_for_selector("#setup:not([hidden])")
    page.select_option("#region-kind", "whole")
    page.select_option("#scale", "2")
    page.select_option("#format", "webp")
    page.click("#start")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    page.wait_for_function("() => document.getElementById('after').complete")
    assert page.eval_on_selector("#after", "img => [img.naturalWidth, img.naturalHeight]") == [240, 180]
    facts = page.text_content("#facts")
    assert "the whole photo: 120 × 90 px at (0, 0) → 240 × 180 px (2×)" in facts
    assert "Self-check" in facts and "dB" in facts
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "harbour-x0-y0-120x90-2x.webp"
    with Image.open(download.value.path()) as image:
        assert image.format == "WEBP" and image.size == (240, 180)
