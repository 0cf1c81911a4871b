"""The upload page in a real browser (Debian's chromium driven by Playwright) against a real gunicorn."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image, ImageFilter, ImageOps

from websupport import CHROMIUM, jpeg_bytes, make_photo

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
def open_page(browser, server, problems):
    """Open the page in a browser context of its own, with these options (viewport, touch); closed after the test."""
    contexts = []

    def open_(**options):
        context = browser.new_context(base_url=server.http.base, **{"viewport": {"width": 1200, "height": 900},
                                                                     **options})
        contexts.append(context)
        page = context.new_page()
        # Anything the page logs as an error (a CSP violation, a script error, a failed request) fails the test.
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto("/")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], problems


@pytest.fixture
def page(open_page):
    return open_page()


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
    # config.json's context_px (8) around the 48 px crop, which lies 8 px or more inside the photo
    assert "(8×), inside 64 × 64 px of the photo around it (cut away after); step 1 as the median of 8 rotated " \
           "and flipped passes" in facts
    assert "JPEG quality about" in facts and "(measured)" in facts
    assert "Profilephoto settings, chosen by a JPEG input" in facts.replace("\n", "")
    assert re.search(r"blur read as a Gaussian of [0-9.]+ px;?", facts) and "blurrier" not in facts
    assert "Learning from this photo70 % of each step's learning kept, blended with the weights it started " \
           "from; not judged" in facts.replace("\n", "")
    with page.expect_download() as download:
        page.click("#download")
    with Image.open(download.value.path()) as image:
        assert image.format == "PNG" and image.size == (384, 384)


def test_a_blurry_photo_says_it_learned_nothing_and_why(page):
    blurred = make_photo(320, 240, 3).filter(ImageFilter.GaussianBlur(2))
    page.set_input_files("#file", files=[{"name": "soft.jpg", "mimeType": "image/jpeg",
                                          "buffer": jpeg_bytes(image=blurred)}])
    page.wait_for_selector("#setup:not([hidden])")
    page.select_option("#crop-size", "48")
    page.click("#start")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    facts = page.text_content("#facts")
    assert "blurrier than its own smaller copies" in facts
    assert "Profileblurry photo settings, chosen by a blurry JPEG input" in facts.replace("\n", "")
    assert "Learning from this photoskipped: the photo is blurrier" in facts.replace("\n", "")
    assert re.search(r"Training0 iterations", facts)


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
    # The link names no file of its own: the name is the server's (photo, region, scale).
    assert page.get_attribute("#download", "download") == "" and page.text_content("#download") == "Download WebP"
    assert download.value.suggested_filename == "harbour-x0-y0-120x90-2x.webp"
    with Image.open(download.value.path()) as image:
        assert image.format == "WEBP" and image.size == (240, 180)


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def enlarge(page, data: bytes, crop: str = "64") -> None:
    """Upload a photo, enlarge a region of `crop` pixels 8x and wait until both images of the result are in."""
    page.set_input_files("#file", files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": data}])
    page.wait_for_selector("#setup:not([hidden])")
    page.select_option("#crop-size", crop)
    page.click("#start")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    page.wait_for_function("() => ['before', 'after'].every(id => document.getElementById(id).complete && "
                           "document.getElementById(id).naturalWidth > 0)")
    # In the middle of the window, so that the pointer reaches it.
    page.eval_on_selector("#compare", "el => el.scrollIntoView({block: 'center'})")


def box(page, selector: str) -> dict:
    return page.eval_on_selector(selector, "el => { const r = el.getBoundingClientRect(); "
                                           "return {x: r.x, y: r.y, width: r.width, height: r.height}; }")


def divider_centre(page) -> float:
    divider = box(page, "#divider")
    return divider["x"] + divider["width"] / 2


def slider_value(page) -> float:
    return float(page.get_attribute("#divider", "aria-valuenow"))


def clip_percent(page) -> float:
    """Where the ZSSR pane starts, in percent of its width, from its computed clip-path."""
    clip = page.eval_on_selector("#after-pane", "el => getComputedStyle(el).clipPath")
    return float(re.fullmatch(r"inset\(0px 0px 0px ([\d.]+)%\)", clip).group(1))


def no_page_scroll_sideways(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_divider_is_dragged_on_the_image_itself(open_page, viewport, tmp_path):
    page = open_page(viewport=viewport)
    enlarge(page, jpeg_bytes(320, 240, seed=7))
    assert no_page_scroll_sideways(page)
    image, compare = box(page, "#after"), box(page, "#compare")
    # The slider is the image: same place, same width; the divider runs its whole height.
    for key in ("x", "y", "width", "height"):
        assert abs(compare[key] - image[key]) <= 1 and abs(box(page, "#before")[key] - image[key]) <= 1
    assert abs(box(page, "#divider")["height"] - image["height"]) <= 1
    if viewport is DESKTOP:
        assert image["width"] == 512  # 64 px at 8x, at its own size: the card is wider
    else:
        assert image["width"] < 390 - 20
    assert slider_value(page) == 50 and abs(divider_centre(page) - (image["x"] + image["width"] / 2)) <= 2

    y = image["y"] + image["height"] * 0.7  # away from the divider's knob
    page.mouse.move(divider_centre(page), y)
    page.mouse.down()
    target = image["x"] + image["width"] * 0.3
    page.mouse.move(target, y, steps=6)
    assert abs(divider_centre(page) - target) <= 2
    assert abs(slider_value(page) - 30) <= 1 and abs(clip_percent(page) - 30) <= 1
    # The pointer is captured: past the image's edge the divider stops at the edge and keeps following.
    page.mouse.move(image["x"] - 40, y, steps=3)
    assert slider_value(page) == 0 and clip_percent(page) == 0
    page.mouse.move(target, y, steps=3)
    page.mouse.up()
    assert abs(divider_centre(page) - target) <= 2
    # A click anywhere on the image puts the divider there.
    page.mouse.click(image["x"] + image["width"] * 0.8, y)
    assert abs(slider_value(page) - 80) <= 1

    # By keyboard: the divider is a slider of its own, focused by the drag.
    assert page.evaluate("() => document.activeElement.id") == "divider"
    assert page.get_attribute("#divider", "role") == "slider"
    page.keyboard.press("ArrowLeft")
    assert abs(slider_value(page) - 78) <= 1
    page.keyboard.press("End")
    assert slider_value(page) == 100 and clip_percent(page) == 100
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    assert slider_value(page) == 2
    assert abs(divider_centre(page) - (image["x"] + image["width"] * 0.02)) <= 2
    path = tmp_path / f"result-{viewport['width']}.png"
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as shot:
        assert shot.width == viewport["width"]


def test_a_finger_drags_the_divider_on_a_phone(open_page):
    page = open_page(viewport=PHONE, has_touch=True, is_mobile=True)
    enlarge(page, jpeg_bytes(320, 240, seed=8))
    image = box(page, "#after")
    x, y = image["x"] + image["width"] * 0.5, image["y"] + image["height"] * 0.7
    target = image["x"] + image["width"] * 0.3
    touch = page.context.new_cdp_session(page)
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 7):
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove",
                                                "touchPoints": [{"x": x + (target - x) * step / 6, "y": y}]})
    # Touch moves reach the page with its next frames.
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    assert abs(divider_centre(page) - target) <= 2 and abs(slider_value(page) - 30) <= 1
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert abs(clip_percent(page) - 30) <= 1
    assert no_page_scroll_sideways(page)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_zoom_shows_image_pixels_as_screen_pixels(open_page, viewport, tmp_path):
    page = open_page(viewport=viewport)
    enlarge(page, jpeg_bytes(320, 240, seed=9), crop="128")  # 1024 x 1024: wider than either window's card
    natural = page.eval_on_selector("#after", "img => img.naturalWidth")
    assert natural == 1024 and box(page, "#after")["width"] < natural
    page.focus("#zoom-1")
    page.keyboard.press("Enter")
    assert page.get_attribute("#zoom-1", "aria-pressed") == "true"
    for selector in ("#before", "#after"):
        assert box(page, selector)["width"] == natural
        assert page.eval_on_selector(selector, "img => getComputedStyle(img).imageRendering") == "pixelated"
    assert no_page_scroll_sideways(page)
    # Wider than the card, the box scrolls instead (by keyboard too), and opens on the divider.
    scroller = box(page, "#compare-box")
    assert scroller["width"] <= viewport["width"] - 20
    if viewport is PHONE:
        assert abs(divider_centre(page) - (scroller["x"] + scroller["width"] / 2)) <= 2
    else:
        assert abs(scroller["width"] - natural - 2) <= 1  # the image and a border
    assert page.get_attribute("#compare-box", "tabindex") == "0"
    top = page.eval_on_selector("#compare-box", "el => el.scrollTop")
    page.focus("#compare-box")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(f"() => document.getElementById('compare-box').scrollTop > {top}")
    # Dragging still puts the divider under the pointer.
    y = scroller["y"] + scroller["height"] * 0.7
    target = scroller["x"] + scroller["width"] * 0.25
    page.mouse.move(divider_centre(page), y)
    page.mouse.down()
    page.mouse.move(target, y, steps=4)
    page.mouse.up()
    assert abs(divider_centre(page) - target) <= 2
    page.screenshot(path=str(tmp_path / f"zoom-{viewport['width']}.png"))
    page.click("#zoom-2")
    assert box(page, "#after")["width"] == 2 * natural and no_page_scroll_sideways(page)
    page.click("#view-side")
    assert box(page, "#before")["width"] == box(page, "#original")["width"] == 2 * natural
    assert no_page_scroll_sideways(page)
    page.click("#zoom-fit")
    assert box(page, "#after")["width"] < natural and page.get_attribute("#compare-box", "tabindex") is None
    assert page.eval_on_selector("#after", "img => getComputedStyle(img).imageRendering") == "auto"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_original_region_is_shown_enlarged_nearest_neighbour(open_page, viewport, tmp_path):
    # Turned a quarter by EXIF: the page draws the region from the photo as shown, as the server cuts it.
    data = jpeg_bytes(160, 120, seed=11, quality=95, orientation=6)
    with Image.open(io.BytesIO(data)) as stored:
        photo = ImageOps.exif_transpose(stored).convert("RGB")
    assert photo.size == (120, 160)
    page = open_page(viewport=viewport)
    enlarge(page, data, crop="48")
    x, y = map(int, re.search(r"48 × 48 px at \((\d+), (\d+)\)", page.text_content("#region-info")).groups())
    page.click("#view-original")
    assert page.is_hidden("#before") and page.is_visible("#original")
    assert page.text_content("#original-caption") == "Original, nearest 8×"
    assert "the original" in page.get_attribute("#divider", "aria-valuetext")
    canvas, image = box(page, "#original"), box(page, "#after")
    for key in ("x", "y", "width", "height"):
        assert abs(canvas[key] - image[key]) <= 1
    assert page.eval_on_selector("#original", "c => [c.width, c.height]") == [384, 384]
    pixels = page.eval_on_selector("#original", "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, "
                                                "c.height).data)")
    drawn = Image.frombytes("RGBA", (384, 384), bytes(pixels)).convert("RGB")
    for i, j in [(0, 0), (5, 9), (23, 31), (47, 47), (40, 2)]:
        # Each photo pixel is an 8 x 8 block of one colour: repeated, not smoothed.
        block = drawn.crop((8 * i, 8 * j, 8 * i + 8, 8 * j + 8))
        assert len(block.getcolors()) == 1, (i, j)
        got, want = drawn.getpixel((8 * i + 4, 8 * j + 4)), photo.getpixel((x + i, y + j))
        assert max(abs(a - b) for a, b in zip(got, want)) <= 8, (i, j, got, want)  # two JPEG decoders
    page.click("#view-side")
    panes = [box(page, selector) for selector in ("#original", "#before", "#after")]
    assert all(abs(pane["width"] - panes[0]["width"]) <= 1 for pane in panes)
    assert panes[0]["x"] < panes[1]["x"] < panes[2]["x"] and page.is_hidden("#divider")
    assert no_page_scroll_sideways(page)
    path = tmp_path / f"side-{viewport['width']}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
