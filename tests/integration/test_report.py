"""The batch report: rows for every video (failed ones too), totals, and sorting in a real
headless browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cpp_tracker.cli import main
from cpp_tracker.visual.report import collect_report_rows, write_report
from tests.results_helpers import tracked

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def batch(video_factory, tmp_path_factory):
    """A batch folder: two tracked videos (one a copy under another name) and a failed one."""
    _, _, result_dir = tracked(video_factory, tmp_path_factory)
    _, _, other_dir = tracked(video_factory, tmp_path_factory, name="checking_b", seed=2)
    out = tmp_path_factory.mktemp("batch")
    shutil.copytree(result_dir, out / "night1")
    shutil.copytree(other_dir, out / "night2")
    pd.DataFrame({
        "video": ["/data/night1.mp4", "/data/night2.mp4", "/data/night3.mp4"],
        "status": ["done", "done", "failed"],
        "error": ["", "", "/data/night3.mp4: cannot be opened as a video"],
        "started": ["", "", ""], "finished": ["", "", ""],
        "duration_s": [3.0, 3.0, 0.1],
        "result_dir": ["night1", str(out / "night2"), ""],
    }).to_csv(out / "batch_status.csv", index=False)
    return out


def test_rows_cover_every_video(batch):
    rows = collect_report_rows(batch)
    assert [(r.video, r.status) for r in rows] == [
        ("night1", "done"), ("night2", "done"), ("night3", "failed")]
    assert "cannot be opened" in rows[2].error
    assert set(rows[0].chamber_percent) == {"paired", "unpaired"}
    assert sum(rows[0].chamber_percent.values()) == pytest.approx(100.0)


def test_report_without_status_file(batch, tmp_path, capsys):
    shutil.copytree(batch / "night1", tmp_path / "night1")
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "night1" in page and 'src="night1/qc.png"' in page
    assert "http://" not in page and "https://" not in page  # nothing from the internet
    assert main(["report", str(tmp_path / "nothing")]) == 1
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 1
    assert "holds no result folder" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install "
                    "chromium) to open the report in a real browser")
def test_report_opens_in_a_headless_browser_and_sorts(batch):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright (pip) is needed to drive chromium")
    path = write_report(batch)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(Path(path).as_uri())
            page.wait_for_load_state("load")

            def column(i: int) -> list[str]:
                return page.eval_on_selector_all(
                    f"#videos tbody tr td:nth-child({i})",
                    "els => els.map(e => e.textContent.trim())",
                )

            assert column(1) == ["night1", "night2", "night3"]
            assert "3videos" in page.inner_text("#totals").replace("\n", "")
            assert "cannot be opened as a video" in page.inner_text("#videos")
            widths = page.eval_on_selector_all("img.thumb", "els => els.map(e => e.naturalWidth)")
            assert widths == [1600, 1600]  # the qc.png thumbnails load from relative links

            headers = page.eval_on_selector_all(
                "#videos th", "els => els.map(e => e.getAttribute('data-chamber'))")
            k = headers.index("paired") + 1  # percent, the minutes below it

            def percents() -> list[str]:
                return page.eval_on_selector_all(
                    f"#videos tbody tr td:nth-child({k})",
                    "els => els.map(e => e.firstChild ? e.firstChild.textContent : '')")

            values = [float(v) for v in percents() if v]
            assert len(values) == 2 and all(" min" in t for t in column(k) if t)
            page.click(f"#videos th:nth-child({k})")
            sorted_up = [float(v) for v in percents() if v]
            assert sorted_up == sorted(values) and percents()[-1] == ""  # empty cells last
            page.click(f"#videos th:nth-child({k})")
            assert [float(v) for v in percents() if v] == sorted(values, reverse=True)
            page.click("#videos th:nth-child(1)")
            page.click("#videos th:nth-child(1)")
            assert column(1) == ["night3", "night2", "night1"]
            assert errors == []
        finally:
            browser.close()


# ------------------------------------------------------------------------- the layout
#: Window widths the page must fit without horizontal scrolling (a laptop to a desktop).
WIDTHS = (1280, 1600, 1920)

LONG_CHAMBERS = ("black_and_white_striped_chamber", "grey_neutral_centre_compartment",
                 "white_with_black_dots_chamber")


def long_name(i: int) -> str:
    return (f"2024-03-14_cohortB_cage{i:02d}_mouse_m01{i:02d}_post-test_day3_camera2_overnight"
            "_infrared_recording_part1_of_3")


@pytest.fixture(scope="module")
def long_batch(tmp_path_factory):
    """A batch that strains the layout: long video names and paths, five chamber names
    (a three-chamber config with long names and a two-chamber one), QC reasons and warnings
    with long unbroken words, a failed video with a long error, and every file linked."""
    import cv2
    import numpy as np

    from tests.handmade_results import THREE_CHAMBERS, TWO_CHAMBERS, config_with, write_result

    three = config_with(THREE_CHAMBERS)
    for chamber, name in zip(three["arenas"][0]["chambers"], LONG_CHAMBERS, strict=True):
        chamber["name"] = name
    out = tmp_path_factory.mktemp("long") / "session_folder_with_a_rather_long_name"
    png = tmp_path_factory.mktemp("png") / "qc.png"
    cv2.imwrite(str(png), np.full((1200, 1600, 3), 200, np.uint8))
    videos = []
    for i in range(4):
        name = long_name(i)
        video = f"/very/long/path/to/the/videos/of/the/experiment/{name}.mp4"
        videos.append(video)
        if i % 2 == 0:
            config = three
            segments = [(None, 2.0), ("left", 5.0), ("centre", 4.0), ("right", 6.0)]
        else:
            config, segments = TWO_CHAMBERS, [(None, 2.0), ("left", 10.0), ("right", 6.0)]
        folder = write_result(out / name, segments, config=config, video=video)
        shutil.copy(png, folder / "qc.png")
        (folder / "review").mkdir()
        run = json.loads((folder / "run.json").read_text())
        run["warnings"] = [
            f"{video}: the container's timestamps jump back at frame 12345; repaired with the "
            "frame interval (0.0333333 s)",
            "lighting_changed_between_12345_s_and_23456_s_" + "without_a_space_" * 6,
        ]
        run["qc"] = {"box": {"needs_review": True, "review_reasons": [
            "no detection in 18 % of frames (limit 5 %)",
            "unknown_time_" + "x" * 90,
            f"{video} ends 4.2 s before its nominal length",
        ]}}
        (folder / "run.json").write_text(json.dumps(run, indent=2))
    failed = "/very/long/path/to/the/videos/of/the/experiment/" + long_name(9) + ".mp4"
    pd.DataFrame({
        "video": [*videos, failed],
        "status": ["done"] * 4 + ["failed"],
        "error": [""] * 4 + [f"{failed}: cannot be opened as a video ({'x' * 120})"],
        "started": "", "finished": "", "duration_s": 1.0,
        "result_dir": [long_name(i) for i in range(4)] + [""],
    }).to_csv(out / "batch_status.csv", index=False)
    return out


#: Where things are on the page: the document's width, and the right edge (px from the
#: window's left) of every QC cell, link, thumbnail and number cell.
MEASURE = """() => {
  const heads = [...document.querySelectorAll('#videos thead th')].map(h => h.textContent.trim());
  const qcCol = heads.indexOf('QC') + 1;
  const box = e => e.getBoundingClientRect();
  const right = sel => [...document.querySelectorAll(sel)].map(e => box(e).right);
  return {
    scrollWidth: document.documentElement.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    qc: [...document.querySelectorAll(`#videos tbody td:nth-child(${qcCol})`)]
        .map(e => [box(e).right, box(e).width]),
    links: [...document.querySelectorAll('a')].map(e => [e.textContent.trim(), box(e).right]),
    thumbs: right('img.thumb'),
    numbers: [...document.querySelectorAll('#videos td.num')]
        .map(e => e.scrollWidth <= e.clientWidth),
  };
}"""


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install "
                    "chromium) to open the report in a real browser")
def test_report_fits_the_window_at_common_widths(long_batch):
    """No horizontal scrolling at 1280-1920 px: the QC column and every link on screen."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright (pip) is needed to drive chromium")
    path = write_report(long_batch)
    measured = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", "--no-sandbox"])
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(Path(path).as_uri())
                page.wait_for_load_state("load")
                measured[width] = page.evaluate(MEASURE)
                page.close()
        finally:
            browser.close()
    for width, m in measured.items():
        assert len(m["qc"]) == 5 and len(m["thumbs"]) == 4 and len(m["numbers"]) > 20
        assert len(m["links"]) == 4 * (1 + 1 + 6)  # video, thumbnail, six files
        assert m["scrollWidth"] <= width, (width, m["scrollWidth"])
        assert m["bodyScrollWidth"] <= width, (width, m["bodyScrollWidth"])
        for right, cell_width in m["qc"]:
            assert right <= width, (width, right)
            assert cell_width >= 150, (width, cell_width)  # wide enough to read
        off = [(text, right) for text, right in m["links"] if right > width]
        assert off == [], (width, off)
        assert max(m["thumbs"]) <= width
        assert all(m["numbers"])  # no number cut or spilling into the next column
