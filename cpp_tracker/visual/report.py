"""The batch report: one static ``report.html`` over a folder of results.

One row per video and arena (one row for a video that failed, with its error): status,
recorded length, time and percent in each chamber (headed by the chamber's colour in the
pictures), unknown time, distance, QC, a thumbnail of ``qc.png`` and links to the files.
The batch totals are on top. Clicking a column header sorts by it (a few lines of inline
JavaScript); the page needs no server and no internet: images and files are linked relative
to the report, so the folder can be moved or shared as a whole. The table takes the
window's width and wraps long names, paths, QC reasons and warnings (at ``_ - / \\``
first), so that the page reads without horizontal scrolling in a window 1280 px wide or
more (checked in headless Chromium by the tests).

Rows come from the result folders found below the batch folder (each has a ``run.json``)
and, when present, from ``batch_status.csv`` (``video, status, error, started, finished,
duration_s, result_dir``) written by ``cpp-tracker batch``, which also lists the videos
that failed.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import CppTrackerError, OutputError
from ..results.outputs import write_bytes
from ..results.stored import find_result_dirs, load_result
from .palette import chamber_colours

__all__ = [
    "REPORT_FILE",
    "ReportRow",
    "ReportsUpdate",
    "collect_report_rows",
    "mark_report_stale",
    "render_report",
    "reports_covering",
    "update_reports",
    "write_report",
]

#: The page ``report`` and ``batch`` write in the results folder.
REPORT_FILE = "report.html"
_STATUS_FILE = "batch_status.csv"
#: <meta name="generator" content="cpp-tracker report"> marks a page as ours; the folder
#: of results it covers is in <meta name="cpp-tracker-results">, relative to the page.
_GENERATOR_META, _GENERATOR = "generator", "cpp-tracker report"
_RESULTS_META = "cpp-tracker-results"
_RESULTS_RE = re.compile(r'<meta name="cpp-tracker-results" content="([^"]*)">')
_CACHE_ID = "report-rows"
_CACHE_RE = re.compile(r'<script type="application/json" id="report-rows">(.*?)</script>', re.S)
_STALE_ID = "stale"
_STALE_RE = re.compile(r'<div id="stale" role="alert"[^>]*>.*?</div>', re.S)
_BODY_RE = re.compile(r"<body[^>]*>", re.I)
_FILES = ("qc.png", "summary.csv", "occupancy.csv", "track.parquet", "run.json", "review")


@dataclass
class ReportRow:
    """One row of the report: a video's arena, or a video without results."""

    video: str
    status: str
    arena: str = ""
    animal_id: str = ""
    duration_s: float = math.nan
    chamber_s: dict[str, float] = field(default_factory=dict)
    chamber_percent: dict[str, float] = field(default_factory=dict)
    unknown_s: float = math.nan
    distance: float = math.nan
    distance_unit: str = ""
    needs_review: bool | None = None
    qc_notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    result_dir: Path | None = None


def _read_status(batch_dir: Path) -> pd.DataFrame | None:
    path = batch_dir / _STATUS_FILE
    if not path.exists():
        return None
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise OutputError(f"{path}: cannot be read ({e}); rerun the batch") from None
    if "video" not in table.columns:
        raise OutputError(f"{path}: has no 'video' column; is it a batch status file?")
    return table


def _rows_for_result(result_dir: Path, status: str) -> list[ReportRow]:
    try:
        result = load_result(result_dir)
        summary = result.summary()
    except CppTrackerError as e:
        return [ReportRow(video=result_dir.name, status="unreadable", error=str(e),
                          result_dir=result_dir)]
    warnings = list(result.record.warnings)
    rows = []
    for arena in result.config.arenas:
        sub = summary[summary["arena"].astype(str) == arena.name]
        row = ReportRow(video=result.name, status=status, arena=arena.name,
                        result_dir=result_dir, warnings=warnings)
        if len(sub):
            _fill_from_summary(row, sub)
        _add_verdict(row, result.record, arena.name, sub)
        rows.append(row)
    return rows


def _fill_from_summary(row: ReportRow, sub: pd.DataFrame) -> None:
    """The arena's figures from its rows of summary.csv."""
    first = sub.iloc[0]
    row.animal_id = "" if pd.isna(first.get("animal_id")) else str(first["animal_id"])
    row.duration_s = float(first["duration_s"])
    row.unknown_s = float(first["unknown_s"])
    if "distance_cm" in sub.columns and pd.notna(first.get("distance_cm")):
        row.distance, row.distance_unit = float(first["distance_cm"]), "cm"
    elif "distance_px" in sub.columns:
        row.distance, row.distance_unit = float(first["distance_px"]), "px"
    for r in sub.itertuples(index=False):
        if r.chamber != "unknown":
            row.chamber_s[str(r.chamber)] = float(r.time_s)
            row.chamber_percent[str(r.chamber)] = float(r.percent)
    if "needs_review" in sub.columns:
        values = sub["needs_review"].astype(str).str.lower()
        row.needs_review = bool(values.isin(["true", "1", "yes"]).any())


def _add_verdict(row: ReportRow, record, arena: str, sub: pd.DataFrame) -> None:
    """The QC verdict and its reasons: from the run record, else from summary.csv; a result
    without either is still doubted when the record says why (a truncated file)."""
    arena_qc = record.arena_qc(arena)
    if arena_qc is None and row.needs_review is None and record.doubts(arena):
        row.needs_review = True
        row.qc_notes.extend(record.doubts(arena))
        return
    if arena_qc is not None:
        if row.needs_review is None:
            row.needs_review = arena_qc.needs_review
        row.qc_notes.extend(arena_qc.review_reasons)
    if not row.qc_notes and len(sub) and "review_reasons" in sub.columns:
        text = sub["review_reasons"].iloc[0]
        if isinstance(text, str) and text.strip():
            row.qc_notes.extend(t.strip() for t in text.split(";") if t.strip())


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def collect_report_rows(batch_dir: str | Path) -> list[ReportRow]:
    """Every row of the report of ``batch_dir`` (see the module description)."""
    return _collect(Path(batch_dir), None)[0]


def _collect(batch_dir: Path, cached: dict | None) -> tuple[list[ReportRow], dict]:
    """The rows of ``batch_dir``'s report, and the entries of the page's row cache.

    ``cached`` is the row cache of the page being rewritten (see :func:`_cached_rows`), or
    None to read every result folder.
    """
    if not batch_dir.is_dir():
        raise OutputError(f"{batch_dir}: no such folder; give the --out folder of a batch")
    dirs = find_result_dirs(batch_dir, allow_empty=True)
    status = _read_status(batch_dir)
    rows: list[ReportRow] = []
    entries: dict[str, dict] = {}

    def rows_for(result_dir: Path, state: str) -> list[ReportRow]:
        return _cached_rows(result_dir, state, batch_dir, cached, entries)

    used: set[Path] = set()
    if status is not None:
        for rec in status.to_dict("records"):
            video = str(rec.get("video", ""))
            state = str(rec.get("status", "")) or "unknown"
            found = None
            rdir = str(rec.get("result_dir", "") or "")
            if rdir:
                p = Path(rdir)
                p = p if p.is_absolute() else batch_dir / p
                found = next((d for d in dirs if _same_dir(d, p)), None)
            if found is None:
                stem = Path(video).stem
                found = next((d for d in dirs if d.name == stem and d not in used), None)
            if found is not None and state.lower() not in ("failed", "error"):
                used.add(found)
                rows.extend(rows_for(found, state))
            else:
                if found is not None:
                    used.add(found)
                rows.append(ReportRow(video=Path(video).stem or video, status=state,
                                      error=str(rec.get("error", "")), result_dir=found))
    for d in dirs:
        if d not in used:
            rows.extend(rows_for(d, "done"))
    return rows, entries


# ------------------------------------------------------------------------ the row cache
# A page keeps the rows it shows, per result folder, with the identity (modification time
# in ns, size, inode) of the two files they are read from: rewriting the page after one
# folder changed reads that folder only. Every result file is replaced by renaming a new
# file over it (results/outputs), so a folder whose run.json and summary.csv have the same
# identity holds the same results. Rows of unreadable folders are not kept (read again).
_CACHE_FORMAT = 1
_ROW_FILES = ("run.json", "summary.csv")
_FLOATS = ("duration_s", "unknown_s", "distance")


def _signature(result_dir: Path) -> list:
    sig: list = []
    for name in _ROW_FILES:
        try:
            st = (result_dir / name).stat()
        except OSError:
            sig.append(None)
        else:
            sig.append([st.st_mtime_ns, st.st_size, st.st_ino])
    return sig


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _row_to_json(row: ReportRow) -> dict:
    data = {f.name: getattr(row, f.name) for f in fields(ReportRow) if f.name != "result_dir"}
    for name in _FLOATS:
        data[name] = _finite_or_none(data[name])
    for name in ("chamber_s", "chamber_percent"):
        data[name] = {str(k): _finite_or_none(v) for k, v in data[name].items()}
    data["qc_notes"], data["warnings"] = list(row.qc_notes), list(row.warnings)
    return data


def _row_from_json(data: dict, result_dir: Path) -> ReportRow:
    names = {f.name for f in fields(ReportRow)} - {"result_dir"}
    if not isinstance(data, dict) or set(data) != names:
        raise ValueError("not a report row")
    row = ReportRow(**data, result_dir=result_dir)
    for name in _FLOATS:
        value = getattr(row, name)
        setattr(row, name, math.nan if value is None else float(value))
    for name in ("chamber_s", "chamber_percent"):
        setattr(row, name, {str(k): math.nan if v is None else float(v)
                            for k, v in getattr(row, name).items()})
    row.qc_notes, row.warnings = [str(n) for n in row.qc_notes], [str(w) for w in row.warnings]
    return row


def _cached_rows(result_dir: Path, status: str, batch_dir: Path, cached: dict | None,
                 entries: dict[str, dict]) -> list[ReportRow]:
    """The rows of one result folder: from ``cached`` when its files are unchanged, else
    read; the entry for the new page goes into ``entries``."""
    key = Path(os.path.relpath(result_dir, batch_dir)).as_posix()
    signature = _signature(result_dir)
    entry = (cached or {}).get(key)
    rows = None
    if isinstance(entry, dict) and entry.get("signature") == signature \
            and entry.get("status") == status:
        try:
            rows = [_row_from_json(r, result_dir) for r in entry["rows"]]
        except (TypeError, ValueError, KeyError, AttributeError):
            rows = None
    if rows is None:
        rows = _rows_for_result(result_dir, status)
    if not any(r.error for r in rows):
        entries[key] = {"status": status, "signature": signature,
                        "rows": [_row_to_json(r) for r in rows]}
    return rows


def _cache_json(entries: dict) -> str:
    """The row cache as JSON that cannot end the <script> element holding it."""
    text = json.dumps({"format": _CACHE_FORMAT, "version": __version__, "results": entries},
                      ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _read_cache(page_text: str) -> dict | None:
    """The row cache of a page written by this version, or None."""
    m = _CACHE_RE.search(page_text)
    if m is None:
        return None
    try:
        data = json.loads(m.group(1))
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT \
            or data.get("version") != __version__ or not isinstance(data.get("results"), dict):
        return None
    return data["results"]


# ------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1em 1.2em;color:#222;
 overflow-wrap:break-word}
h1{font-size:1.4em;margin:0 0 .3em;overflow-wrap:anywhere}
.totals{display:flex;flex-wrap:wrap;gap:.6em 2.2em;margin:.8em 0 1.2em;padding:.8em 1em;
 background:#f4f4f4;border-radius:6px}
.totals div b{display:block;font-size:1.3em}
table{border-collapse:collapse;font-size:.85em;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3em .4em;text-align:left;vertical-align:top}
th{background:#eee;cursor:pointer;user-select:none;position:sticky;top:0;vertical-align:bottom}
.unit{display:block;color:#666;font-size:.85em;font-weight:normal}
.swatch{display:inline-block;width:.75em;height:.75em;border:1px solid #333;
 margin-right:.3em;vertical-align:-.05em}
th[aria-sort=ascending]::after{content:' \\25B2'}
th[aria-sort=descending]::after{content:' \\25BC'}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.video,td.qc,p.review{overflow-wrap:anywhere}
td.video{min-width:9em}
td.qc{min-width:13em}
td.files a{display:inline-block;white-space:nowrap;margin-right:.5em}
td.files a.thumb{display:block;margin:0 0 .3em}
.failed td{background:#fde8e0}
.review{color:#a33;font-weight:bold}
.ok{color:#075}
.err{color:#a33;white-space:pre-wrap}
img.thumb{width:clamp(90px,10vw,220px);height:auto;border:1px solid #ccc}
.small{color:#666;font-size:.85em}
details ul{margin:.2em 0;padding-left:1.2em}
"""

_JS = """
(function(){
  function key(td){
    var v = td.getAttribute('data-v');
    if (v === null) v = td.textContent.trim();
    if (v === '') return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortBy(th){
    var table = th.closest('table'), body = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(th.parentNode.children, function(h){
      h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
                                      : (typeof x === 'number' ? -1 : 1);
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  }
  document.querySelectorAll('th[data-sort]').forEach(function(th){
    th.addEventListener('click', function(){ sortBy(th); });
  });
})();
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _breakable(text: object) -> str:
    """Escaped ``text`` with a line-break opportunity (``<wbr>``) after each ``_ - / \\`` and
    each dot before a letter: long file and chamber names wrap at their separators rather
    than anywhere."""
    return _BREAK_AFTER.sub(r"\1<wbr>", _e(text))


# a run of _ / \ - (after a character, before one), or a dot before a letter (not 0.5)
_BREAK_AFTER = re.compile(r"(?<=[^\s>])([_/\\-]+|\.(?=[A-Za-z]))(?=[^\s<&])")


def _href(target: Path, base: Path) -> str:
    rel = os.path.relpath(target, base)
    return quote(Path(rel).as_posix())


def _num(value: float, fmt: str) -> tuple[str, str]:
    """(display text, sort value) for a number that may be NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "", ""
    return format(value, fmt), repr(float(value))


def _cell(text: str, sort_value: str | None = None, cls: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    if sort_value is not None:
        attrs += f' data-v="{_e(sort_value)}"'
    return f"<td{attrs}>{text}</td>"


def render_report(rows: list[ReportRow], base: Path, title: str, *,
                  results_dir: Path | None = None, cache: dict | None = None) -> str:
    """The report's HTML for ``rows``, with links relative to ``base``.

    ``results_dir``: the folder of results the page covers, named in the page (relative to
    ``base``) so that :func:`update_reports` can find the pages that cover a folder;
    ``cache``: the row cache that lets such a rewrite read only the changed folders.
    """
    chambers: list[str] = []
    for r in rows:
        chambers.extend(c for c in r.chamber_s if c not in chambers)
    totals = _totals(rows, chambers)
    failed = sorted({r.video for r in rows if r.error})

    # (header HTML, attributes); a chamber's column shows its percent, the minutes below,
    # and its colour in the pictures (each row keeps its config's chamber order, so with
    # one config the columns are in its order and the colours are those of its pictures)
    colours = chamber_colours(chambers)
    head = [(_e(h), "") for h in ("video", "arena", "animal", "status", "length (min)")]
    head += [(f'<span class="swatch" style="background:{colours[c].hex}"></span>'
              f'{_breakable(c)}<span class="unit">% (min)</span>',
              f' class="chamber" data-chamber="{_e(c)}"') for c in chambers]
    head += [(_e(h), "") for h in ("unknown (min)", "distance", "QC", "files")]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="{_GENERATOR_META}" content="{_GENERATOR}">',
        *([f'<meta name="{_RESULTS_META}" content="{_e(_relative(results_dir, base))}">']
          if results_dir is not None else []),
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        '<p class="small">Click a column header to sort. Percentages are of the time with a '
        "known chamber; unknown time is shown apart. Each thumbnail opens the video's QC "
        "figure.</p>",
        '<div class="totals" id="totals">',
        *[f"<div><b>{_e(v)}</b>{_e(k)}</div>" for k, v in totals],
        "</div>",
    ]
    if failed:
        out.append(f'<p class="review">Failed: {_breakable(", ".join(failed))}</p>')
    out.append('<table id="videos"><thead><tr>')
    out += [f'<th data-sort="1" scope="col"{attrs}>{h}</th>' for h, attrs in head]
    out.append("</tr></thead><tbody>")
    out += [_row_html(r, chambers, base) for r in rows]
    out += ["</tbody></table>", f"<script>{_JS}</script>"]
    if cache is not None:
        out.append(f'<script type="application/json" id="{_CACHE_ID}">{_cache_json(cache)}'
                   "</script>")
    out += ["</body></html>", ""]
    return "\n".join(out)


def _totals(rows: list[ReportRow], chambers: list[str]) -> list[tuple[str, str]]:
    """The figures above the table: videos per status, hours, arenas, the chamber means
    (of the arenas that need no review) and how many need review or have warnings."""
    videos = sorted({r.video for r in rows})
    failed = {r.video for r in rows if r.error}
    done = [r for r in rows if not r.error and r.result_dir is not None]
    hours = sum(r.duration_s for r in done if not math.isnan(r.duration_s)) / 3600
    statuses: dict[str, int] = {}
    for v in videos:
        states = {r.status for r in rows if r.video == v}
        s = "failed" if v in failed else sorted(states)[0]
        statuses[s] = statuses.get(s, 0) + 1
    totals = [("videos", str(len(videos)))]
    totals += [(s, str(n)) for s, n in sorted(statuses.items())]
    totals.append(("hours recorded", f"{hours:.2f}" if hours < 10 else f"{hours:.1f}"))
    totals.append(("arenas analysed", str(len(done))))
    totals += _chamber_means(done, chambers)
    totals.append(("need review", str(len({r.video for r in rows if r.needs_review}))))
    totals.append(("with warnings", str(len({r.video for r in done if r.warnings}))))
    return totals


def _chamber_means(done: list[ReportRow], chambers: list[str]) -> list[tuple[str, str]]:
    """Mean ± SD percent per chamber; doubt travels: an arena that needs review is listed,
    never averaged in."""
    usable = [r for r in done if not r.needs_review]
    excluded = (f", {len(done) - len(usable)} needing review left out"
                if len(usable) < len(done) else "")
    means = []
    for c in chambers:
        vals = np.array([r.chamber_percent.get(c, np.nan) for r in usable], dtype=float)
        vals = vals[np.isfinite(vals)]
        if len(vals):
            sd = f" ± {vals.std(ddof=1):.1f}" if len(vals) > 1 else ""
            means.append((f"{c}: mean % (± SD) of {len(vals)}{excluded}",
                          f"{vals.mean():.1f}{sd}"))
    return means


def _row_html(r: ReportRow, chambers: list[str], base: Path) -> str:
    """One table row: the video (linked), its figures, the QC cell and the files."""
    cls = ' class="failed"' if r.error else ""
    if r.result_dir is not None:
        cells = [_cell(f'<a href="{_href(r.result_dir, base)}/">{_breakable(r.video)}</a>',
                       r.video, "video")]
    else:
        cells = [_cell(_breakable(r.video), r.video, "video")]
    cells.append(_cell(_breakable(r.arena)))
    cells.append(_cell(_breakable(r.animal_id)))
    cells.append(_cell(_e(r.status)))
    text, v = _num(r.duration_s / 60 if not math.isnan(r.duration_s) else math.nan, ".1f")
    cells.append(_cell(text, v, "num"))
    for c in chambers:
        text, v = _num(r.chamber_percent.get(c, math.nan), ".1f")
        minutes, _ = _num(r.chamber_s.get(c, math.nan) / 60, ".1f")
        if minutes:
            text += f'<span class="unit">{minutes} min</span>'
        cells.append(_cell(text, v, "num"))
    text, v = _num(r.unknown_s / 60 if not math.isnan(r.unknown_s) else math.nan, ".2f")
    cells.append(_cell(text, v, "num"))
    text, v = _num(r.distance, ".0f")
    cells.append(_cell(f"{text} {r.distance_unit}" if text else "", v, "num"))
    cells.append(_qc_cell(r))
    cells.append(_files_cell(r, base))
    return f"<tr{cls}>{''.join(cells)}</tr>"


def _qc_cell(r: ReportRow) -> str:
    """The error, or the verdict with its reasons and the warnings (sorted by how bad)."""
    if r.error:
        return _cell(f'<div class="err">{_breakable(r.error)}</div>', "3", "qc")
    parts, rank = [], 0
    if r.needs_review:
        parts.append('<span class="review">needs review</span>')
        rank = 2
    elif r.needs_review is False:
        parts.append('<span class="ok">passed</span>')
    parts += [_breakable(n) for n in r.qc_notes]
    if r.warnings:
        rank = max(rank, 1)
        items = "".join(f"<li>{_breakable(w)}</li>" for w in r.warnings)
        parts.append(f"<details><summary>{len(r.warnings)} warning(s)</summary>"
                     f"<ul>{items}</ul></details>")
    return _cell("<br>".join(parts) or "-", str(rank), "qc")


def _files_cell(r: ReportRow, base: Path) -> str:
    """The QC figure's thumbnail above the links to the files, in one column."""
    thumb, links = "", []
    if r.result_dir is not None:
        qc_png = r.result_dir / "qc.png"
        if qc_png.exists():
            h = _href(qc_png, base)
            thumb = (f'<a class="thumb" href="{h}"><img class="thumb" src="{h}" '
                     f'loading="lazy" alt="QC figure of {_e(r.video)}"></a>')
        for name in _FILES:
            if (r.result_dir / name).exists():
                links.append(f'<a href="{_href(r.result_dir / name, base)}">{_e(name)}</a>')
    return _cell(thumb + " ".join(links), str(len(links)), "files")


def _relative(target: Path, base: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(target), os.path.abspath(base))).as_posix()


def write_report(batch_dir: str | Path, path: str | Path | None = None, *,
                 reuse_rows: bool = False) -> Path:
    """Write ``report.html`` (or ``path``) for the results in ``batch_dir``; return its path.

    Works on any folder of results; uses ``batch_status.csv`` when present. Raises
    :class:`OutputError` when the folder holds neither results nor a status file.
    ``reuse_rows``: take the rows of result folders whose ``run.json`` and ``summary.csv``
    are the very files the existing page was made from out of that page instead of reading
    them (the page is the same; :func:`update_reports` uses it to rewrite a big batch's page
    after one folder changed).
    """
    batch_dir = Path(batch_dir)
    target = Path(path) if path is not None else batch_dir / REPORT_FILE
    cached = None
    if reuse_rows:
        try:
            cached = _read_cache(target.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            cached = None
    rows, entries = _collect(batch_dir, cached)
    if not rows:
        raise OutputError(
            f"{batch_dir}: holds no result folder (no run.json below it) and no "
            f"{_STATUS_FILE}; give the --out folder of track or batch"
        )
    title = f"cpp-tracker results: {batch_dir.resolve().name}"
    page = render_report(rows, target.parent, title, results_dir=batch_dir, cache=entries)
    return write_bytes(target, page.encode("utf-8"))


# --------------------------------------------------------------- keeping pages up to date
@dataclass
class ReportsUpdate:
    """What :func:`update_reports` did: the pages rewritten, and the pages that could not
    be rewritten (with why), which carry an out-of-date banner instead."""

    rewritten: list[Path] = field(default_factory=list)
    stale: list[tuple[Path, str]] = field(default_factory=list)


def _page_results_dir(page: Path, text: str) -> Path | None:
    """The folder of results ``page`` covers, or None when it is no report of ours."""
    if f'<meta name="{_GENERATOR_META}" content="{_GENERATOR}">' not in text:
        # pages of earlier versions: the title and table, over the page's own folder
        if "<title>cpp-tracker results: " not in text or '<table id="videos">' not in text:
            return None
        return page.parent
    m = _RESULTS_RE.search(text)
    return page.parent if m is None else page.parent / html.unescape(m.group(1))


def _is_within(folder: Path, root: Path) -> bool:
    try:
        folder, root = folder.resolve(), root.resolve()
    except OSError:
        return False
    return folder == root or root in folder.parents


def reports_covering(result_dir: str | Path) -> list[tuple[Path, Path]]:
    """``(page, results folder)`` of every ``report.html`` that shows ``result_dir``.

    The pages are looked for in ``result_dir`` and each folder above it (``cpp-tracker
    report OUTDIR`` and ``batch`` write ``OUTDIR/report.html`` over every result below
    OUTDIR); a page counts when it is a report of cpp-tracker whose results folder holds
    ``result_dir``. Nearest first.
    """
    result_dir = Path(os.path.abspath(result_dir))
    found = []
    for folder in (result_dir, *result_dir.parents):
        page = folder / REPORT_FILE
        try:
            if not page.is_file():
                continue
            text = page.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        results = _page_results_dir(page, text)
        if results is not None and _is_within(result_dir, results):
            found.append((page, Path(os.path.normpath(results))))
    return found


def update_reports(result_dirs: str | Path | Sequence[str | Path]) -> ReportsUpdate:
    """Rewrite every ``report.html`` that shows one of ``result_dirs`` (after their results
    changed, e.g. by ``reprocess``), each page once.

    A page is rewritten from the results as they are now, as ``cpp-tracker report`` would
    write it (folders whose files did not change are taken from the page itself, so this is
    quick on a big batch). A page that cannot be rewritten (e.g. an unreadable
    ``batch_status.csv``, a folder that cannot be written) gets a banner saying it is out
    of date, which folders changed and the command that rewrites it; it is listed in
    ``stale`` with the reason. Never raises for a page: the results are complete without it.
    """
    if isinstance(result_dirs, (str, Path)):
        result_dirs = [result_dirs]
    pages: dict[Path, tuple[Path, list[Path]]] = {}
    for d in result_dirs:
        for page, results in reports_covering(d):
            pages.setdefault(page, (results, []))[1].append(Path(d))
    update = ReportsUpdate()
    for page, (results, changed) in pages.items():
        try:
            write_report(results, page, reuse_rows=True)
        except Exception as e:  # noqa: BLE001 - the page is marked instead
            why = str(e) or type(e).__name__
            names = ", ".join(str(d) for d in changed)
            message = (
                f"This page is out of date: the results of {names} changed on "
                f"{_now()} and the page could not be rewritten ({why}). Its numbers may be "
                f"the old ones: run 'cpp-tracker report {shlex.quote(str(results))}' to rewrite it."
            )
            try:
                mark_report_stale(page, message)
            except Exception as e2:  # noqa: BLE001 - reported to the caller
                why += f"; it could not be marked out of date either ({e2})"
            update.stale.append((page, why))
        else:
            update.rewritten.append(page)
    return update


def mark_report_stale(page: str | Path, message: str) -> Path:
    """Put a banner with ``message`` at the top of the report ``page`` (replacing an
    earlier one), leaving the rest of the page as it is."""
    page = Path(page)
    text = page.read_text(encoding="utf-8", errors="replace")
    banner = (f'<div id="{_STALE_ID}" role="alert" style="background:#fff3cd;border:2px solid '
              '#c80;border-radius:6px;padding:.7em 1em;margin:0 0 1em;font-weight:bold">'
              f"{_e(message)}</div>")
    if _STALE_RE.search(text):
        text = _STALE_RE.sub(lambda _: banner, text, count=1)
    else:
        body = _BODY_RE.search(text)
        at = body.end() if body else 0
        text = text[:at] + banner + text[at:]
    return write_bytes(page, text.encode("utf-8"))


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")
