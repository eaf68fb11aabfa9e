"""The batch report: rows for every video (failed ones too), totals, and sorting in a real
headless browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

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
                "#videos th", "els => els.map(e => e.textContent.trim())")
            k = headers.index("paired (%)") + 1
            values = [float(v) for v in column(k) if v]
            page.click(f"#videos th:nth-child({k})")
            sorted_up = [float(v) for v in column(k) if v]
            assert sorted_up == sorted(values) and column(k)[-1] == ""  # empty cells last
            page.click(f"#videos th:nth-child({k})")
            assert [float(v) for v in column(k) if v] == sorted(values, reverse=True)
            page.click("#videos th:nth-child(1)")
            page.click("#videos th:nth-child(1)")
            assert column(1) == ["night3", "night2", "night1"]
            assert errors == []
        finally:
            browser.close()
