"""The QC figure: written by track, right size, and its trajectory lies on the true path."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib import colormaps
from PIL import Image

from cpp_tracker.cli import main
from cpp_tracker.results.stored import flagged_seconds, has_qc_flags, load_result
from cpp_tracker.visual import plots
from tests.results_helpers import tracked


@pytest.fixture(scope="module")
def result(video_factory, tmp_path_factory):
    return tracked(video_factory, tmp_path_factory)


def test_track_writes_qc_png_of_the_expected_size(result):
    _, _, result_dir = result
    png = result_dir / "qc.png"
    assert png.exists()
    with Image.open(png) as image:
        assert image.size == plots.QC_FIGURE_SIZE_PX
    run = json.loads((result_dir / "run.json").read_text())
    assert "qc.png" in run["outputs"]
    assert not any("QC figure" in w for w in run["warnings"])


def _viridis_rgb(values: np.ndarray) -> np.ndarray:
    return (np.asarray(colormaps["viridis"](values))[..., :3] * 255).astype(float)


def test_trajectory_passes_through_the_true_path(result):
    """At truth points of the mouse, the figure shows the time colour of a moment when the
    mouse was there; at floor points it never visited, it shows no trajectory colour."""
    _, truth, result_dir = result
    png = result_dir / "qc.png"
    tf = plots.read_trajectory_transform(png)
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(float)
    t = truth.track
    duration_s = float(json.loads((result_dir / "run.json").read_text())["time_base"]["duration_s"])
    xs, ys, ts = t["x"].to_numpy(), t["y"].to_numpy(), t["time_s"].to_numpy()

    def figure_px(x, y):
        return (int(round(tf["x_scale"] * x + tf["x_offset"])),
                int(round(tf["y_scale"] * y + tf["y_offset"])))

    def matches_time_colour(x, y, radius_fig=3, near_video_px=3.0, tol=45.0):
        near = np.hypot(xs - x, ys - y) <= near_video_px
        if not near.any():
            return False
        colours = _viridis_rgb(ts[near] / duration_s)  # (k, 3)
        c, r = figure_px(x, y)
        patch = rgb[r - radius_fig : r + radius_fig + 1, c - radius_fig : c + radius_fig + 1]
        d = np.linalg.norm(patch.reshape(-1, 1, 3) - colours[None, :, :], axis=2)
        return bool((d < tol).any())

    rng = np.random.default_rng(0)
    picks = rng.choice(len(t), size=25, replace=False)
    hits = [matches_time_colour(xs[i], ys[i]) for i in picks]
    # tracked centroids lie within a pixel or two of the truth; allow 2 of 25 misses
    assert sum(hits) >= 23, hits

    # negative control: floor points at least 25 px from anywhere the mouse went
    arena = truth.config["arenas"][0]
    (x0, y0), (x1, y1) = arena["polygon"][0], arena["polygon"][2]
    far = []
    for x in np.linspace(x0 + 10, x1 - 10, 25):
        for y in np.linspace(y0 + 10, y1 - 10, 19):
            if np.hypot(xs - x, ys - y).min() > 25:
                c, r = figure_px(x, y)
                far.append(rgb[r, c])
    assert len(far) > 20
    far = np.array(far)
    all_times = _viridis_rgb(np.linspace(0, 1, 64))
    d = np.linalg.norm(far[:, None, :] - all_times[None], axis=2).min(axis=1)
    spread = far.max(axis=1) - far.min(axis=1)  # grey background: channels equal
    assert (spread < 12).mean() > 0.9
    assert (d > 30).mean() > 0.9


def test_drawing_uses_no_pyplot(result):
    """Drawing must not import pyplot (global figure state, a GUI backend)."""
    import subprocess

    _, _, result_dir = result
    code = (
        "import sys; from cpp_tracker.visual.plots import write_qc_figure; "
        f"write_qc_figure({str(result_dir)!r}); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_plot_command_redraws_from_stored_results(result, tmp_path, capsys):
    _, _, result_dir = result
    png = result_dir / "qc.png"
    before = png.stat().st_mtime_ns
    assert main(["plot", str(result_dir.parent)]) == 0
    assert png.stat().st_mtime_ns >= before
    assert str(png) in capsys.readouterr().out


def test_plot_command_errors_name_the_folder(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 1
    assert "nope: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty")]) == 1
    assert "holds no result folder" in capsys.readouterr().err


def test_no_plots_option_and_plot_failure_keep_results(video_factory, tmp_path, monkeypatch):
    pytest.importorskip("cpp_tracker.synthetic", reason="test video generator not on branch")
    from tests.results_helpers import SPEC

    video, _, config = video_factory("checking", **SPEC)
    out = tmp_path / "a"
    assert main(["track", str(video), "--config", str(config), "--out", str(out),
                 "--no-progress", "--no-plots"]) == 0
    stem = video.stem
    assert (out / stem / "run.json").exists()
    assert not (out / stem / "qc.png").exists()

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(plots, "write_qc_figure", broken)
    out = tmp_path / "b"
    assert main(["track", str(video), "--config", str(config), "--out", str(out),
                 "--no-progress"]) == 0
    run = json.loads((out / stem / "run.json").read_text())
    assert not (out / stem / "qc.png").exists()
    assert (out / stem / "summary.csv").exists()
    assert any("qc.png could not be drawn (RuntimeError: no fonts)" in w
               for w in run["warnings"])
    assert "qc.png" not in run["outputs"]


def test_qc_flags_and_lighting_periods_are_read_and_drawn(result, tmp_path):
    """A result of an older run (no QC block, lighting or qc_ columns) reads as having none;
    flag columns and lighting periods, once there, are used and drawn."""

    _, _, result_dir = result
    copy = _without_qc_fields(result_dir, tmp_path)
    assert load_result(copy).record.lighting_periods() == []
    assert not has_qc_flags(load_result(copy))
    run = json.loads((copy / "run.json").read_text())
    run["lighting"] = {"followed": True, "abrupt_changes": 1, "periods": [
        {"start_s": 0, "end_s": 12.5, "gain_median": 0.9},
        {"start_s": 12.5, "end_s": 20.0, "gain_median": 0.4}]}
    (copy / "run.json").write_text(json.dumps(run))
    occ = pd.read_csv(copy / "occupancy.csv")
    occ["flag_jump"] = occ["second"].isin([3, 4, 10])
    occ.to_csv(copy / "occupancy.csv", index=False)

    stored = load_result(copy)
    assert stored.record.lighting_periods() == [(0.0, 12.5, "gain 0.9"), (12.5, 20.0, "gain 0.4")]
    assert has_qc_flags(stored)
    flags = flagged_seconds(stored)
    assert set(flags["second"]) == {3, 4, 10}
    assert "jump" in set(flags["reason"])
    path = plots.write_qc_figure(stored)
    with Image.open(path) as image:
        assert image.size == plots.QC_FIGURE_SIZE_PX


def _without_qc_fields(result_dir, tmp_path):
    """A copy of a result as an older run wrote it: no lighting, QC block or qc_ columns."""
    import shutil

    copy = tmp_path / result_dir.name
    shutil.copytree(result_dir, copy)
    run = json.loads((copy / "run.json").read_text())
    run.pop("lighting", None)
    run.pop("qc", None)
    (copy / "run.json").write_text(json.dumps(run))
    occ = pd.read_csv(copy / "occupancy.csv")
    occ = occ[[c for c in occ.columns if not c.startswith("qc_")]]
    occ.to_csv(copy / "occupancy.csv", index=False)
    return copy


def test_stored_flags_and_lighting_of_a_current_run(result):
    _, _, result_dir = result
    stored = load_result(result_dir)
    assert has_qc_flags(stored)
    occ = pd.read_csv(result_dir / "occupancy.csv")
    flags = flagged_seconds(stored)
    assert set(flags["second"]) == set(occ.loc[occ["qc_flag"], "second"])
    ((start, end, _),) = stored.record.lighting_periods()  # one period: no light change
    assert start == 0.0 and end == pytest.approx(20.0, abs=0.1)


def test_fallback_flags_come_from_the_track(result, tmp_path):
    _, _, result_dir = result
    stored = load_result(_without_qc_fields(result_dir, tmp_path))
    track = stored.track()
    flags = flagged_seconds(stored)
    undetected = np.floor(track.loc[~track["detected"], "time_s"]).astype(int)
    first = track.loc[track["detected"], "time_s"].min()
    expected = set(undetected[track.loc[~track["detected"], "time_s"] > first])
    expected |= set(np.floor(track.loc[track["n_blobs"] > 1, "time_s"]).astype(int))
    assert set(flags["second"]) == expected
    assert flagged_seconds(stored, fallback=False).empty


def test_per_arena_qc_block_and_lighting_report_format(result, tmp_path):
    """The format of the QC stage: per-second qc_* columns with qc_flag, a QC block per
    arena and run.json's lighting.periods."""
    import shutil

    _, _, result_dir = result
    copy = tmp_path / result_dir.name
    shutil.copytree(result_dir, copy)
    run = json.loads((copy / "run.json").read_text())
    run["qc"] = {"box1": {"needs_review": True, "flagged_seconds": 2,
                          "review_reasons": ["no detection in 9 % of frames (limit 5 %)"]}}
    run["lighting"] = {"followed": True, "abrupt_changes": 1, "periods": [
        {"start_s": 0.0, "end_s": 8.0, "gain_median": 1.0},
        {"start_s": 8.0, "end_s": 20.0, "gain_median": 0.6}]}
    (copy / "run.json").write_text(json.dumps(run))
    occ = pd.read_csv(copy / "occupancy.csv")
    occ["qc_frames"] = 30
    occ["qc_undetected"] = np.where(occ["second"] == 5, 0.8, 0.0)
    occ["qc_multi_blob"] = np.where(occ["second"] == 7, 0.1, 0.0)
    occ["qc_jumps"] = 0
    occ["qc_area_outlier"] = 0.0
    occ["qc_flag"] = occ["second"].isin([5, 7])
    occ.to_csv(copy / "occupancy.csv", index=False)
    summary = pd.read_csv(copy / "summary.csv")
    summary["needs_review"] = True
    summary.to_csv(copy / "summary.csv", index=False)

    stored = load_result(copy)
    assert stored.record.lighting_periods() == [(0.0, 8.0, "gain 1"), (8.0, 20.0, "gain 0.6")]
    assert has_qc_flags(stored)
    flags = flagged_seconds(stored)
    assert list(zip(flags["second"], flags["reason"], strict=True)) == [(5, "no detection"),
                                                          (7, "competing blobs")]
    fig, _ = plots.draw_qc_figure(stored)
    assert "NEEDS REVIEW" in fig._suptitle.get_text()
    titles = [ax.get_title() for ax in fig.axes]
    assert "Chamber per second (QC: 2 flagged s)" in titles

    from cpp_tracker.visual.report import collect_report_rows

    row = collect_report_rows(copy)[0]
    assert row.needs_review is True
    assert row.qc_notes == ["no detection in 9 % of frames (limit 5 %)"]


def test_trajectory_paths_by_colour_hold_every_segment_once_in_order():
    # segments a-b, b-c (joined), d-e (a gap), e-f; colours: two runs
    pts = np.array([[0, 0], [1, 0], [2, 0], [5, 5], [6, 5], [7, 5]], dtype=float)
    segments = np.stack([pts[[0, 1, 3, 4]], pts[[1, 2, 4, 5]]], axis=1)
    red, blue = [1.0, 0, 0, 1], [0, 0, 1.0, 1]
    rgba = np.array([red, red, red, blue])
    paths, colours = plots._paths_by_colour(segments, rgba)
    assert np.array_equal(colours, [red, blue])
    # the first run: a-b-c, a break, d-e; the second starts anew at e
    np.testing.assert_array_equal(paths[0], [[0, 0], [1, 0], [2, 0], [np.nan, np.nan],
                                             [5, 5], [6, 5]])
    np.testing.assert_array_equal(paths[1], [[6, 5], [7, 5]])
    # the drawn pieces between breaks are exactly the segments, in time order
    rng = np.random.default_rng(2)
    xy = rng.random((500, 2))
    keep = rng.random(499) > 0.2
    idx = np.flatnonzero(keep)
    segments = np.stack([xy[idx], xy[idx + 1]], axis=1)
    rgba = colormaps["viridis"](np.sort(rng.random(len(idx))))
    paths, colours = plots._paths_by_colour(segments, rgba)
    got = []
    for path in paths:
        for piece in np.split(path, np.flatnonzero(np.isnan(path[:, 0]))):
            piece = piece[np.isfinite(piece[:, 0])]
            got.extend(np.stack([piece[:-1], piece[1:]], axis=1))
    np.testing.assert_array_equal(np.array(got), segments)
    assert len(paths) == len(np.unique(rgba, axis=0)) < len(segments)


def test_png_bytes_keep_the_pixels_and_the_text(tmp_path):
    import io

    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[10:20] = 200  # flat rows, as in a figure
    data = plots._png_bytes(rgb, {plots.TRAJECTORY_KEY: '{"x_scale": 1.5}', "Software": "x"})
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGB" and image.size == (53, 37)
        assert np.array_equal(np.asarray(image), rgb)
        assert image.info[plots.TRAJECTORY_KEY] == '{"x_scale": 1.5}'
    (tmp_path / "qc.png").write_bytes(data)
    assert plots.read_trajectory_transform(tmp_path / "qc.png") == {"x_scale": 1.5}


def test_a_truncated_recording_shows_the_part_not_read(result, tmp_path):
    """When a file ends early (run.json: the length expected from the container is longer
    than what was read), the time axes of the timeline and the cumulative panel run to the
    expected length, the missing part is hatched 'not read', and the header says how much
    was read; a complete recording's axes end where it ends."""
    import shutil

    _, _, result_dir = result
    stored = load_result(result_dir)
    read_s = stored.duration_s
    assert plots.not_read_until(stored, read_s) is None  # complete: nothing missing
    fig, _ = plots.draw_qc_figure(stored)
    assert fig.axes[2].get_xlim()[1] == pytest.approx(read_s / 60.0)
    assert not any(t.get_text() == "not read" for t in fig.axes[2].texts)

    copy = tmp_path / result_dir.name
    shutil.copytree(result_dir, copy)
    run = json.loads((copy / "run.json").read_text())
    run["time_base"]["expected_duration_s"] = 2.0 * read_s
    (copy / "run.json").write_text(json.dumps(run))
    truncated = load_result(copy)
    assert plots.not_read_until(truncated, read_s) == pytest.approx(2.0 * read_s)
    fig, _ = plots.draw_qc_figure(truncated)
    timeline, cumulative = fig.axes[2], fig.axes[3]
    for ax in (timeline, cumulative):
        assert ax.get_xlim()[1] == pytest.approx(2.0 * read_s / 60.0)
        assert any(t.get_text() == "not read" for t in ax.texts)
    assert "not read" in [t.get_text() for t in timeline.get_legend().get_texts()]
    assert f"{read_s / 60:.1f} of {2 * read_s / 60:.1f} min read" in fig._suptitle.get_text()
