"""`cpp-tracker draw`: the page is written, self-contained, and driven in a real browser.

The browser tests click at known video pixels in headless Chromium (Debian's `chromium`,
driven by Playwright's Python package pointed at that executable; Playwright's own browser
downloads are not used) and check the YAML the page produces, by `check-config`. They are
skipped, saying why, where no browser is installed.
"""

from __future__ import annotations

import base64
import json
import re
import shutil

import numpy as np
import pytest
import yaml

from cpp_tracker.cli import main
from cpp_tracker.config.settings import load_config, parse_config
from cpp_tracker.setup.draw_page import build_draw_page
from cpp_tracker.synthetic import ArenaSpec

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def page_data(html: str) -> dict:
    text = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(text.group(1))


# ---------------------------------------------------------------------------- the file
def test_the_page_is_one_self_contained_file():
    image = np.tile(np.arange(64, dtype=np.uint8), (48, 1))
    html = build_draw_page(image, video="night1.mp4")
    assert "http://" not in html and "https://" not in html  # nothing from the internet
    assert not re.search(r'<(script|link|img)[^>]+(src|href)=', html)  # nothing else either
    data = page_data(html)
    assert (data["width"], data["height"]) == (64, 48)
    assert base64.b64decode(data["background"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["config"] is None and "night1.mp4" in html


def test_a_config_cannot_break_out_of_the_page():
    config = {"arenas": [{"name": "</script><script>alert(1)</script>", "polygon": [[0, 0]],
                          "chambers": []}]}
    html = build_draw_page(np.zeros((10, 10), np.uint8), config=config)
    assert html.count("</script>") == 2  # the data script and the page script only
    assert page_data(html)["config"]["arenas"][0]["name"].startswith("</script>")


def test_draw_cli_writes_the_page_and_reports_config_problems(video_factory, tmp_path, capsys):
    video, truth, config = video_factory("draw_2ch", duration_s=6.0, seed=31)
    out = tmp_path / "draw.html"
    assert main(["draw", str(video), "--out", str(out)]) == 0
    assert page_data(out.read_text())["width"] == truth.spec.width
    bad = dict(truth.config)
    bad["arenas"] = [dict(bad["arenas"][0], doors=[])]  # two points in one piece
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text(yaml.safe_dump(bad))
    capsys.readouterr()
    assert main(["draw", str(video), "--config", str(bad_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "problems to fix on the page" in printed and "same piece" in printed
    assert page_data(out.read_text())["config"]["arenas"][0]["doors"] == []


@pytest.mark.parametrize("args,message,code", [
    (["--out", "draw.txt"], "must end in .html", 2),
    (["--out", "draw.html", "--config", "missing.yaml"], "file not found", 2),
])
def test_draw_cli_errors(video_factory, tmp_path, capsys, args, message, code):
    video, _, _ = video_factory("draw_2ch", duration_s=6.0, seed=31)
    args = [str(tmp_path / a) if a.endswith((".txt", ".html", ".yaml")) else a for a in args]
    assert main(["draw", str(video), *args]) == code
    assert message in capsys.readouterr().err


def test_draw_cli_on_a_config_that_is_not_yaml(video_factory, tmp_path, capsys):
    video, _, _ = video_factory("draw_2ch", duration_s=6.0, seed=31)
    broken = tmp_path / "broken.yaml"
    broken.write_text("arenas: [\n")
    assert main(["draw", str(video), "--config", str(broken), "--out",
                 str(tmp_path / "d.html")]) == 2
    assert "cannot be read as YAML" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the browser
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium installed (Debian: apt-get install chromium); the page is "
                    "not driven in a browser here")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed "
        "(pip install '.[test]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def open_page(browser, path, zoom: float):
    page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function("window.cppDraw !== undefined")
    page.evaluate(f"window.cppDraw.setZoom({zoom})")
    box = page.locator("#overlay").bounding_box()
    return page, box, errors


def click(page, box, zoom, x, y):
    """Click at video pixel (x, y)."""
    page.mouse.click(box["x"] + x * zoom, box["y"] + y * zoom)


@pytest.fixture(scope="module")
def blank_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("draw") / "draw.html"
    image = np.full((240, 320), 150, np.uint8)
    path.write_text(build_draw_page(image, video="box.mp4", download_name="box.yaml"))
    return path


@pytest.mark.parametrize("zoom", [1.0, 2.5])
def test_clicks_at_known_pixels_give_the_expected_yaml(browser, blank_page, tmp_path, zoom):
    page, box, errors = open_page(browser, blank_page, zoom)
    for x, y in ((20, 20), (300, 20), (300, 220), (20, 220)):
        click(page, box, zoom, x, y)
    page.keyboard.press("Enter")  # close the outline
    page.check("#mode-door")
    click(page, box, zoom, 160, 20)
    click(page, box, zoom, 160, 220)
    page.check("#mode-chamber")
    click(page, box, zoom, 90, 120)
    assert "has no chamber point" in page.inner_text("#problems")  # the right half
    click(page, box, zoom, 230, 120)
    page.fill("#chamber-name-0", "paired")
    page.fill("#chamber-name-1", "unpaired")
    assert page.inner_text("#problems") == ""
    # the two pieces are coloured by their chambers (the flood fill, in video pixels)
    pieces = page.evaluate("""() => { const p = window.cppDraw.pieces()[0];
        const at = (x, y) => p.label[Math.floor(y / p.cell) * p.gw + Math.floor(x / p.cell)];
        return [at(60, 60), at(250, 200), at(10, 10)]; }""")
    assert pieces == [0, 1, -2]

    config = yaml.safe_load(page.input_value("#yaml"))
    arena = config["arenas"][0]
    tol = 0.5 / zoom + 0.05
    assert np.allclose(arena["polygon"], [[20, 20], [300, 20], [300, 220], [20, 220]], atol=tol)
    assert np.allclose(arena["doors"][0]["line"], [[160, 20], [160, 220]], atol=tol)
    assert [c["name"] for c in arena["chambers"]] == ["paired", "unpaired"]
    assert np.allclose(arena["chambers"][1]["point"], [230, 120], atol=tol)
    assert config["frame_size"] == [320, 240]  # the frame it was drawn on
    assert parse_config(config).frame_size == (320, 240)

    # the downloaded file passes check-config unchanged
    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.name == "box.yaml"
    assert saved.read_text() == page.input_value("#yaml")
    assert main(["check-config", str(saved)]) == 0
    assert errors == []
    page.close()


def test_masks_scale_and_a_second_arena(browser, blank_page):
    zoom = 1.0
    page, box, errors = open_page(browser, blank_page, zoom)
    for x, y in ((10, 10), (150, 10), (150, 230), (10, 230)):
        click(page, box, zoom, x, y)
    click(page, box, zoom, 10, 10)  # clicking the first corner closes the outline
    page.check("#mode-chamber")
    click(page, box, zoom, 80, 120)
    page.check("#mode-mask")
    for x, y in ((20, 20), (40, 20), (40, 40)):
        click(page, box, zoom, x, y)
    page.keyboard.press("Enter")
    page.fill("#px-per-cm", "4.5")
    page.click("#arena-add")
    for x, y in ((170, 10), (310, 10), (310, 230), (170, 230)):
        click(page, box, zoom, x, y)
    page.keyboard.press("Enter")
    page.check("#mode-chamber")
    click(page, box, zoom, 240, 120)
    page.fill("#arena-animal", "m02")
    page.check("#mode-scale")
    click(page, box, zoom, 180, 220)
    click(page, box, zoom, 300, 220)
    page.fill("#scale-cm", "30")
    config = yaml.safe_load(page.input_value("#yaml"))
    assert [a["name"] for a in config["arenas"]] == ["box1", "box2"]
    first, second = config["arenas"]
    assert first["masks"] == [[[20, 20], [40, 20], [40, 40]]]
    assert first["px_per_cm"] == 4.5 and second["animal_id"] == "m02"
    assert second["scale"] == {"points": [[180, 220], [300, 220]], "distance_cm": 30}
    assert parse_config(config).arenas[1].px_per_cm == pytest.approx(4.0)
    assert errors == []
    page.close()


def test_an_existing_config_is_shown_for_correction(browser, video_factory, tmp_path):
    video, truth, config_path = video_factory("draw_3ch", duration_s=6.0, seed=32, wall="light",
                                              arenas=(ArenaSpec(n_chambers=3),))
    raw = yaml.safe_load(config_path.read_text())
    raw["detection"] = {"animal": "dark", "threshold": 25}
    raw["frame_size"] = [truth.spec.width, truth.spec.height]
    config_path = tmp_path / "mine.yaml"
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "draw.html"
    assert main(["draw", str(video), "--config", str(config_path), "--out", str(out)]) == 0
    zoom = 2.0
    page, box, errors = open_page(browser, out, zoom)
    # unchanged, the page writes the same geometry and keeps the other settings
    written = yaml.safe_load(page.input_value("#yaml"))
    assert written["detection"] == {"animal": "dark", "threshold": 25}
    assert written["frame_size"] == [truth.spec.width, truth.spec.height]  # once
    assert written["arenas"][0]["doors"] == raw["arenas"][0]["doors"]
    assert written["arenas"][0]["chambers"] == raw["arenas"][0]["chambers"]
    # drag the first door's top end 10 px to the right
    (x0, y0), _ = raw["arenas"][0]["doors"][0]["line"]
    page.mouse.move(box["x"] + x0 * zoom, box["y"] + y0 * zoom)
    page.mouse.down()
    page.mouse.move(box["x"] + (x0 + 10) * zoom, box["y"] + y0 * zoom, steps=5)
    page.mouse.up()
    moved = yaml.safe_load(page.input_value("#yaml"))
    # mouse events come in whole screen pixels: 1 / zoom video pixels
    assert moved["arenas"][0]["doors"][0]["line"][0] == pytest.approx([x0 + 10, y0], abs=1 / zoom)
    saved = tmp_path / "corrected.yaml"
    saved.write_text(page.input_value("#yaml"))
    assert main(["check-config", str(saved), "--video", str(video)]) == 0
    assert load_config(saved).detection.threshold == 25
    assert errors == []
    page.close()


def test_chambers_have_the_tools_colours_by_name_in_every_arena(browser, tmp_path):
    """The page colours a chamber as every picture of the tool does (visual.palette): by
    its name's place in the config, so 'paired' is one colour in both boxes although box2
    lists it second; renaming a chamber recolours it at once."""
    from cpp_tracker.visual.palette import chamber_colours

    def box(name, x0, names):
        return {"name": name, "polygon": [[x0, 20], [x0 + 280, 20], [x0 + 280, 220], [x0, 220]],
                "doors": [{"name": "door1", "line": [[x0 + 140, 20], [x0 + 140, 220]]}],
                "chambers": [{"name": c, "point": [x0 + 70 + 140 * k, 120]}
                             for k, c in enumerate(names)]}

    raw = {"arenas": [box("box1", 10, ["paired", "unpaired"]),
                      box("box2", 330, ["unpaired", "paired"])]}
    path = tmp_path / "draw.html"
    path.write_text(build_draw_page(np.full((240, 640), 150, np.uint8), config=raw))
    page, _, errors = open_page(browser, path, 1.0)
    want = {n: list(c.rgb) for n, c in chamber_colours(parse_config(raw)).items()}

    def swatches():
        return page.evaluate("""() => [...document.querySelectorAll('#chambers .swatch')]
            .map(s => getComputedStyle(s).backgroundColor.match(/\\d+/g).map(Number))""")

    def piece_colour(x, y):
        return page.evaluate(f"""() => Array.from(document.getElementById('pieces')
            .getContext('2d').getImageData({x}, {y}, 1, 1).data.slice(0, 3))""")

    assert page.evaluate("window.cppDraw.colours()") == {
        n: c for n, c in want.items() if n != "unknown"}
    assert swatches() == [want["paired"], want["unpaired"]]
    for x, name in ((80, "paired"), (220, "unpaired"), (400, "unpaired"), (540, "paired")):
        assert np.abs(np.subtract(piece_colour(x, 60), want[name])).max() <= 4, (x, name)
    page.select_option("#arena-select", "1")
    assert swatches() == [want["unpaired"], want["paired"]]
    # box2's 'paired' renamed: a new name, the next colour, on its swatch and its piece
    page.fill("#chamber-name-1", "neutral")
    third = list(chamber_colours(["paired", "unpaired", "neutral"])["neutral"].rgb)
    assert swatches() == [want["unpaired"], third]
    assert np.abs(np.subtract(piece_colour(540, 60), third)).max() <= 4
    assert errors == []
    page.close()
