"""The batch report's pages kept up to date: which pages show a folder, rewriting them (with
the rows of unchanged folders taken from the page), and the out-of-date banner."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from cpp_tracker.visual.report import (
    mark_report_stale,
    reports_covering,
    update_reports,
    write_report,
)
from tests.handmade_results import write_result


# ------------------------------------------------------------------------ reading a page
class _Table(HTMLParser):
    def __init__(self):
        super().__init__()
        self.chambers: list[str | None] = []
        self.rows: list[list[tuple[dict, str]]] = []
        self._cell: tuple[dict, list[str]] | None = None
        self._body = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "th":
            self.chambers.append(attrs.get("data-chamber"))
        elif tag == "tbody":
            self._body = True
        elif tag == "tr" and self._body:
            self.rows.append([])
        elif tag == "td" and self._body:
            self._cell = (attrs, [])

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append((self._cell[0], "".join(self._cell[1]).strip()))
            self._cell = None
        elif tag == "tbody":
            self._body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1].append(data)


def report_percents(page: str | Path) -> dict[tuple[str, str], float]:
    """``(video, chamber) -> percent`` as ``report.html`` shows it (the cell's sort value)."""
    table = _Table()
    table.feed(Path(page).read_text(encoding="utf-8"))
    out = {}
    for cells in table.rows:
        for i, chamber in enumerate(table.chambers):
            if chamber is not None and cells[i][0].get("data-v"):
                out[(cells[0][1], chamber)] = float(cells[i][0]["data-v"])
    return out


def summary_percents(result_dir: Path) -> dict[tuple[str, str], float]:
    """The same from the folder's ``summary.csv``."""
    table = pd.read_csv(result_dir / "summary.csv")
    return {(result_dir.name, str(r.chamber)): float(r.percent)
            for r in table.itertuples() if r.chamber != "unknown"}


def test_report_percents_reads_what_the_page_shows(tmp_path):
    write_result(tmp_path / "v1", [("left", 3.0), ("right", 1.0)])
    page = write_report(tmp_path)
    assert report_percents(page) == pytest.approx(summary_percents(tmp_path / "v1"))
    assert report_percents(page)[("v1", "left")] == pytest.approx(75.0)


# ------------------------------------------------------------------------ which pages
@pytest.fixture
def batch(tmp_path):
    """``tmp_path/batch`` with two results and its report; a sibling batch with its own."""
    for name, segments in (("v1", [("left", 3.0), ("right", 1.0)]),
                           ("v2", [("left", 1.0), ("right", 1.0)])):
        write_result(tmp_path / "batch" / name, segments)
    write_result(tmp_path / "other" / "w1", [("left", 1.0), ("right", 3.0)])
    write_report(tmp_path / "batch")
    write_report(tmp_path / "other")
    return tmp_path / "batch"


def test_pages_showing_a_folder_are_found_above_it(batch, tmp_path):
    page = batch / "report.html"
    assert reports_covering(batch / "v1") == [(page, batch)]
    assert reports_covering(batch) == [(page, batch)]
    # a page over the whole tree shows it too; one written (with --out) above it for a
    # sibling folder does not
    write_report(tmp_path, tmp_path / "report.html")
    write_report(tmp_path / "other", batch / "v1" / "report.html")
    everything = (tmp_path / "report.html", tmp_path)
    assert reports_covering(batch / "v1") == [(page, batch), everything]
    assert reports_covering(tmp_path / "other" / "w1") == [
        (tmp_path / "other" / "report.html", tmp_path / "other"), everything]
    # nor does a page named report.html that is not ours
    (batch / "v1" / "report.html").write_text("<html><body>my notes</body></html>")
    assert reports_covering(batch / "v1") == [(page, batch), everything]


def test_a_page_of_an_earlier_version_is_recognised(batch):
    page = batch / "report.html"
    text = page.read_text()
    old = re.sub(r'<meta name="(generator|cpp-tracker-results)"[^>]*>\n', "", text)
    old = re.sub(r'<script type="application/json".*?</script>\n', "", old, flags=re.S)
    assert "cpp-tracker" in old and "generator" not in old and "report-rows" not in old
    page.write_text(old)
    assert reports_covering(batch / "v2") == [(page, batch)]
    assert update_reports(batch / "v2").rewritten == [page]
    assert page.read_text() == text


# ------------------------------------------------------------------------ rewriting
def test_rewrite_reads_only_changed_folders_and_equals_a_fresh_page(batch, monkeypatch):
    page = batch / "report.html"
    fresh = page.read_bytes()
    import cpp_tracker.visual.report as report

    read = []
    original = report._rows_for_result
    monkeypatch.setattr(report, "_rows_for_result",
                        lambda d, status: read.append(d.name) or original(d, status))
    assert update_reports([batch / "v1"]).rewritten == [page]
    assert read == [] and page.read_bytes() == fresh  # nothing changed: nothing read

    # new results in v1 (written as track writes them: a new file renamed over the old)
    write_result(batch / "v1", [("left", 1.0), ("right", 3.0)])
    update = update_reports([batch / "v1"])
    assert update.rewritten == [page] and update.stale == []
    assert read == ["v1"]
    assert report_percents(page)[("v1", "left")] == pytest.approx(25.0)
    rewritten = page.read_bytes()
    monkeypatch.undo()
    assert write_report(batch).read_bytes() == rewritten  # as `report` writes it


def test_a_damaged_row_cache_is_not_used(batch):
    page = batch / "report.html"
    text = page.read_text()
    data = json.loads(re.search(r'id="report-rows">(.*?)</script>', text, re.S).group(1))
    entry = data["results"]["v2"]
    entry["rows"][0]["chamber_percent"]["left"] = 99.0  # a page edited by hand
    tampered = re.sub(r'(id="report-rows">).*?(</script>)',
                      lambda m: m.group(1) + json.dumps(data) + m.group(2), text, flags=re.S)
    page.write_text(tampered)
    # the files of v2 did not change, so its rows come from the page ...
    update_reports([batch / "v1"])
    assert report_percents(page)[("v2", "left")] == pytest.approx(99.0)
    # ... but `report` reads every folder, and a cache that does not parse is ignored
    write_report(batch)
    assert report_percents(page)[("v2", "left")] == pytest.approx(50.0)
    page.write_text(text.replace('id="report-rows">{', 'id="report-rows">{{'))
    update_reports([batch / "v1"])
    assert page.read_text() == text


def test_the_row_cache_cannot_end_its_script(tmp_path):
    folder = write_result(tmp_path / "v1", [("left", 1.0), ("right", 1.0)])
    run = json.loads((folder / "run.json").read_text())
    run["warnings"] = ["</script><script>alert(1)</script> & <!--"]
    (folder / "run.json").write_text(json.dumps(run))
    text = write_report(tmp_path).read_text()
    assert text.count("</script>") == 2  # the sorting script and the row cache
    assert "alert(1)" in text and "<script>alert" not in text


def test_a_page_that_cannot_be_rewritten_says_it_is_out_of_date(batch):
    page = batch / "report.html"
    before = report_percents(page)
    (batch / "batch_status.csv").write_text("not,a,status,file\n1,2,3,4\n")
    update = update_reports([batch / "v1"])
    assert update.rewritten == []
    [(stale, why)] = update.stale
    assert stale == page and "has no 'video' column" in why
    text = page.read_text()
    assert text.count('id="stale"') == 1
    banner = re.search(r'<div id="stale".*?</div>', text, re.S).group(0)
    assert "out of date" in banner and str(batch / "v1") in banner
    assert f"cpp-tracker report {batch}" in banner
    assert report_percents(page) == before  # the rest of the page is as it was
    # a second change replaces the banner
    update_reports([batch / "v2"])
    text = page.read_text()
    assert text.count('id="stale"') == 1 and str(batch / "v2") in text
    # once the page can be written, the banner goes
    (batch / "batch_status.csv").unlink()
    assert update_reports([batch / "v2"]).rewritten == [page]
    assert 'id="stale"' not in page.read_text()


def test_mark_report_stale_on_a_page_of_an_earlier_version(tmp_path):
    page = tmp_path / "report.html"
    page.write_text("<!DOCTYPE html>\n<html><head><title>cpp-tracker results: x</title></head>"
                    '<body>\n<h1>x</h1><table id="videos"></table></body></html>\n')
    mark_report_stale(page, "out of date <now>")
    text = page.read_text()
    assert text.startswith('<!DOCTYPE html>\n<html><head><title>cpp-tracker results: x</title>'
                           '</head><body><div id="stale" role="alert"')
    assert "out of date &lt;now&gt;</div>\n<h1>x</h1>" in text


def test_means_leave_out_arenas_that_need_review(tmp_path):
    """Doubt travels: a flagged arena is listed as needing review, never averaged in."""
    from cpp_tracker.visual.report import ReportRow, render_report

    def row(video, paired, review):
        return ReportRow(video=video, status="ok", arena="box", duration_s=600.0,
                         chamber_s={"paired": 6 * paired, "unpaired": 6 * (100 - paired)},
                         chamber_percent={"paired": paired, "unpaired": 100 - paired},
                         needs_review=review, result_dir=tmp_path / video)

    page = render_report([row("a", 60.0, False), row("b", 40.0, False), row("cut", 99.0, True)],
                         tmp_path, "t")
    text = re.sub(r"<[^>]+>", " ", page)
    assert re.search(r"paired: mean % \(± SD\) of 2, 1 needing review left out\s+50\.0 ± 14\.1",
                     text)
    assert "99.0 ±" not in text and "66.3" not in text  # (60 + 40 + 99) / 3 is not shown


def test_chamber_columns_are_headed_by_the_pictures_colours(tmp_path):
    """Each chamber's header shows its colour in qc.png and the other pictures: the config's
    chamber order decides (here 'right' comes first)."""
    import copy

    from cpp_tracker.config.settings import parse_config
    from cpp_tracker.visual.palette import chamber_colours
    from tests.handmade_results import TWO_CHAMBERS

    config = copy.deepcopy(TWO_CHAMBERS)
    config["arenas"][0]["chambers"].reverse()
    for name in ("v1", "v2"):
        write_result(tmp_path / name, [("left", 3.0), ("right", 1.0)], config=config)
    page = write_report(tmp_path).read_text(encoding="utf-8")
    found = re.findall(r'data-chamber="([^"]+)"><span class="swatch" '
                       r'style="background:(#[0-9A-Fa-f]{6})"></span>', page)
    colours = chamber_colours(parse_config(config))
    assert found == [("right", colours["right"].hex), ("left", colours["left"].hex)]
    assert colours["right"] != colours["left"]


def test_a_truncated_result_without_a_qc_verdict_is_flagged_not_averaged(tmp_path):
    """A result of a version before QC: the record's read fraction is all that tells."""
    from cpp_tracker.visual.report import collect_report_rows

    write_result(tmp_path / "whole", [("left", 3.0), ("right", 1.0)])
    cut = write_result(tmp_path / "cut", [("left", 1.0), ("right", 3.0)])
    run = json.loads((cut / "run.json").read_text())
    run["time_base"]["read_fraction_of_nominal"] = 0.4
    (cut / "run.json").write_text(json.dumps(run))
    for folder in (tmp_path / "whole", cut):  # nor QC columns in its summary
        summary = pd.read_csv(folder / "summary.csv")
        summary.drop(columns=[c for c in summary if c in ("needs_review", "review_reasons")]
                     ).to_csv(folder / "summary.csv", index=False)
    rows = {r.video: r for r in collect_report_rows(tmp_path)}
    assert rows["cut"].needs_review is True
    assert rows["cut"].qc_notes[0].startswith("only 40.0 % of the nominal length read")
    assert rows["whole"].needs_review is None  # no verdict and nothing against it
