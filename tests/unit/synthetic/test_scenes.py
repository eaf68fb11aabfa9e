"""Tests of the synthetic CPP video generator (cpp_tracker.synthetic).

Clips are short and small so that the whole module runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

cv2 = pytest.importorskip("cv2")

from cpp_tracker.synthetic import (  # noqa: E402
    ArenaSpec,
    GroundTruth,
    SceneSpec,
    damage_bytes,
    generate_video,
    iter_frames,
    main,
    make_scene,
    truncate_file,
)

# ---------------------------------------------------------------------------
# helpers, written independently of the module's own geometry code
# ---------------------------------------------------------------------------


def _side(line, x, y):
    (x1, y1), (x2, y2) = line
    return np.sign((x2 - x1) * (np.asarray(y) - y1) - (y2 - y1) * (np.asarray(x) - x1))


def _chamber_by_geometry(arena_cfg, x, y):
    """The chamber piece on the same side of every door line as the chamber point."""
    out = np.full(np.shape(x), None, dtype=object)
    for ch in arena_cfg["chambers"]:
        ok = np.ones(np.shape(x), dtype=bool)
        for door in arena_cfg["doors"]:
            ok &= _side(door["line"], x, y) == _side(door["line"], *ch["point"])
        out[ok] = ch["name"]
    return out


def _inside_polygon(poly, x, y):
    cnt = np.asarray(poly, np.float32)
    return np.array([cv2.pointPolygonTest(cnt, (float(a), float(b)), False) > 0
                     for a, b in zip(x, y, strict=True)])


def _arena_track(truth: GroundTruth, name: str) -> pd.DataFrame:
    return truth.track[truth.track["arena"] == name].reset_index(drop=True)


def _read_times(path):
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    times, frames = [], []
    while cap.grab():
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        ok, img = cap.retrieve()
        assert ok
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    cap.release()
    return np.array(times), frames


def _longest_still_s(track: pd.DataFrame, fps: float, tol_px: float = 0.5) -> float:
    x, y = track["x"].to_numpy(), track["y"].to_numpy()
    best, start = 0, 0
    for i in range(1, len(x) + 1):
        if i == len(x) or np.hypot(x[i] - x[start], y[i] - y[start]) > tol_px:
            best, start = max(best, i - start), i
    return best / fps


@pytest.fixture(scope="module")
def one_minute() -> GroundTruth:
    return make_scene(SceneSpec(seed=7, duration_s=60.0))


@pytest.fixture(scope="module")
def dropped_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("syn") / "dropped.mp4"
    spec = SceneSpec(seed=3, duration_s=6.0, dropped=((2.0, 2.5), (4.0, 4.2)))
    return path, generate_video(path, spec)


# ---------------------------------------------------------------------------
# truth and geometry
# ---------------------------------------------------------------------------


def test_track_columns_and_types(one_minute):
    t = one_minute.track
    assert list(t.columns) == ["frame", "time_s", "arena", "x", "y", "chamber", "moving"]
    assert len(t) == 1800
    assert t["frame"].tolist() == list(range(1800))
    assert t["moving"].dtype == bool
    assert np.allclose(np.diff(t["time_s"]), 1 / 30)
    assert one_minute.background.dtype == np.uint8
    assert one_minute.background.shape == (240, 320)
    assert one_minute.distractor_polygon is None


def test_deterministic_for_a_seed():
    spec = SceneSpec(seed=5, duration_s=8.0, arenas=(ArenaSpec(), ArenaSpec(3, 10.0)))
    a, b = make_scene(spec), make_scene(spec)
    pd.testing.assert_frame_equal(a.track, b.track)
    assert a.config == b.config
    assert np.array_equal(a.background, b.background)
    c = make_scene(SceneSpec(seed=6, duration_s=8.0, arenas=spec.arenas))
    assert not np.allclose(a.track["x"], c.track["x"])


def test_config_is_plain_yaml_and_matches_schema(one_minute):
    cfg = one_minute.config
    assert yaml.safe_load(yaml.safe_dump(cfg)) == cfg
    (arena,) = cfg["arenas"]
    assert arena["name"] == "box1"
    assert "animal_id" not in arena
    assert arena["px_per_cm"] == pytest.approx(
        (arena["polygon"][1][0] - arena["polygon"][0][0]) / 60.0, rel=1e-3)
    assert len(arena["polygon"]) == 4
    assert [d["name"] for d in arena["doors"]] == ["door1"]
    assert sorted(c["name"] for c in arena["chambers"]) == ["paired", "unpaired"]
    for ch in arena["chambers"]:
        assert _inside_polygon(arena["polygon"], [ch["point"][0]], [ch["point"][1]]).all()


def test_truth_chamber_consistent_with_geometry(one_minute):
    arena = one_minute.config["arenas"][0]
    t = one_minute.track
    expected = _chamber_by_geometry(arena, t["x"].to_numpy(), t["y"].to_numpy())
    assert (expected == t["chamber"].to_numpy()).all()
    assert set(t["chamber"]) == {"paired", "unpaired"}


def test_path_stays_on_floor_and_crosses_only_through_door_gaps(one_minute):
    arena = one_minute.config["arenas"][0]
    t = one_minute.track
    x, y = t["x"].to_numpy(), t["y"].to_numpy()
    assert _inside_polygon(arena["polygon"], x, y).all()
    poly = np.asarray(arena["polygon"])
    width = poly[:, 0].max() - poly[:, 0].min()
    body = 0.09 * width
    # staying off the walls by about half a body length
    assert x.min() - poly[:, 0].min() > 0.4 * body
    assert poly[:, 0].max() - x.max() > 0.4 * body
    assert y.min() - poly[:, 1].min() > 0.4 * body
    assert poly[:, 1].max() - y.max() > 0.4 * body
    # every step that crosses a dividing wall goes through the middle (the door gap)
    (door,) = arena["doors"]
    (x1, y1), (x2, y2) = door["line"]
    mid = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    s = _side(door["line"], x, y)
    idx = np.nonzero(s[1:] != s[:-1])[0]
    assert len(idx) > 0
    for i in idx:
        p = np.array([(x[i] + x[i + 1]) / 2, (y[i] + y[i + 1]) / 2])
        assert np.hypot(*(p - mid)) < 1.0 * body, (i, p, mid)
    # and the truth's chamber changes only there
    ch = t["chamber"].to_numpy()
    for i in np.nonzero(ch[1:] != ch[:-1])[0]:
        assert np.hypot(x[i] - mid[0], y[i] - mid[1]) < 1.0 * body


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_several_crossings_per_minute(seed):
    t = make_scene(SceneSpec(seed=seed, duration_s=60.0)).track
    ch = t["chamber"].to_numpy()
    assert (ch[1:] != ch[:-1]).sum() >= 3
    times = t.groupby("chamber").size() / 30.0
    assert times.min() > 3.0  # both chambers visited for a while


def test_speed_is_plausible_and_rest_fraction_roughly_kept(one_minute):
    t = one_minute.track
    ppc = one_minute.config["arenas"][0]["px_per_cm"]
    v = np.hypot(np.diff(t["x"]), np.diff(t["y"])) * 30.0 / ppc
    moving = t["moving"].to_numpy()[1:]
    assert 4.0 < np.median(v[moving]) < 20.0
    assert np.percentile(v, 99) < 35.0
    still = 1.0 - t["moving"].mean()
    assert 0.1 < still < 0.35  # rest_fraction 0.2 (turns in place count as still)


def test_sleep_fraction_gives_one_long_still_stretch():
    spec = SceneSpec(seed=4, duration_s=20.0, sleep_fraction=0.5)
    t = make_scene(spec).track
    still = _longest_still_s(t, spec.fps)
    assert 10.0 - 0.1 <= still <= 10.0 + 1.5
    awake = make_scene(SceneSpec(seed=4, duration_s=20.0)).track
    assert _longest_still_s(awake, spec.fps) < 7.0
    # the sleep happens in one chamber
    x, y = t["x"].to_numpy(), t["y"].to_numpy()
    moved = np.hypot(np.diff(x), np.diff(y)) > 0.05
    runs = np.split(np.arange(len(x)), np.nonzero(moved)[0] + 1)
    longest = max(runs, key=len)
    assert t["chamber"].iloc[longest].nunique() == 1


def test_two_arenas_independent_tracks_in_own_boxes():
    spec = SceneSpec(seed=9, duration_s=20.0, arenas=(ArenaSpec(animal_id="m1"),
                                                     ArenaSpec(animal_id="m2")))
    truth = make_scene(spec)
    cfgs = truth.config["arenas"]
    assert [a["name"] for a in cfgs] == ["box1", "box2"]
    assert [a["animal_id"] for a in cfgs] == ["m1", "m2"]
    p1, p2 = (np.asarray(a["polygon"]) for a in cfgs)
    # boxes do not overlap
    assert (p1[:, 1].max() < p2[:, 1].min() or p2[:, 1].max() < p1[:, 1].min()
            or p1[:, 0].max() < p2[:, 0].min() or p2[:, 0].max() < p1[:, 0].min())
    tracks = []
    for a in cfgs:
        t = _arena_track(truth, a["name"])
        assert len(t) == 600
        assert _inside_polygon(a["polygon"], t["x"], t["y"]).all()
        exp = _chamber_by_geometry(a, t["x"].to_numpy(), t["y"].to_numpy())
        assert (exp == t["chamber"].to_numpy()).all()
        poly = np.asarray(a["polygon"])
        tracks.append((t[["x", "y"]].to_numpy() - poly.min(axis=0)) / np.ptp(poly, axis=0))
    # independent paths: relative positions in the boxes differ
    assert np.median(np.hypot(*(tracks[0] - tracks[1]).T)) > 0.05
    assert abs(np.corrcoef(tracks[0][:, 0], tracks[1][:, 0])[0, 1]) < 0.9
    # rows are ordered frame by frame
    assert truth.track["frame"].is_monotonic_increasing


def test_four_arenas_fit_the_frame():
    truth = make_scene(SceneSpec(seed=2, duration_s=3.0, arenas=(ArenaSpec(),) * 4))
    assert len(truth.config["arenas"]) == 4
    for a in truth.config["arenas"]:
        poly = np.asarray(a["polygon"])
        assert poly.min() > 0 and poly[:, 0].max() < 320 and poly[:, 1].max() < 240


def test_three_chambers_config_and_truth():
    spec = SceneSpec(seed=3, duration_s=60.0,
                     arenas=(ArenaSpec(n_chambers=3, door_angle_deg=15.0),))
    truth = make_scene(spec)
    (arena,) = truth.config["arenas"]
    assert [c["name"] for c in arena["chambers"]] == ["paired", "neutral", "unpaired"]
    assert [d["name"] for d in arena["doors"]] == ["door1", "door2"]
    # tilted, parallel door lines
    for d in arena["doors"]:
        (x1, y1), (x2, y2) = d["line"]
        assert np.degrees(np.arctan2(abs(x2 - x1), abs(y2 - y1))) == pytest.approx(15.0, abs=0.5)
    # each chamber point lies in its own piece; the neutral one is the narrowest
    pts = np.array([c["point"] for c in arena["chambers"]])
    names = _chamber_by_geometry(arena, pts[:, 0], pts[:, 1])
    assert list(names) == ["paired", "neutral", "unpaired"]
    t = truth.track
    exp = _chamber_by_geometry(arena, t["x"].to_numpy(), t["y"].to_numpy())
    assert (exp == t["chamber"].to_numpy()).all()
    assert _inside_polygon(arena["polygon"], t["x"], t["y"]).all()
    assert t["chamber"].nunique() >= 2


def test_distractor_polygon_only_when_set():
    for kind in ("blink", "cable"):
        truth = make_scene(SceneSpec(seed=1, duration_s=2.0, distractor=kind))
        poly = np.asarray(truth.distractor_polygon)
        assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 3
        box = np.asarray(truth.config["arenas"][0]["polygon"])
        centre = poly.mean(axis=0)
        assert box[:, 0].min() - 5 < centre[0] < box[:, 0].max() + 5
        assert box[:, 1].min() - 5 < centre[1] < box[:, 1].max() + 5
        assert "masks" not in truth.config["arenas"][0]


def test_invalid_specs_are_rejected():
    with pytest.raises(ValueError):
        SceneSpec(width=321)
    with pytest.raises(ValueError):
        SceneSpec(arenas=())
    with pytest.raises(ValueError):
        ArenaSpec(n_chambers=4)
    with pytest.raises(ValueError):
        SceneSpec(floor="purple")


# ---------------------------------------------------------------------------
# rendered frames and the encoded video
# ---------------------------------------------------------------------------


def test_video_frames_and_timestamps_match_truth_across_drops(dropped_video):
    path, truth = dropped_video
    times, frames = _read_times(path)
    assert len(frames) == len(truth.track) == 180 - 15 - 6
    assert np.abs(times - truth.track["time_s"].to_numpy() * 1000).max() < 1.0
    gaps = np.diff(times)
    assert (gaps > 400).sum() == 1 and (gaps > 150).sum() == 2  # the two dropped stretches
    assert frames[0].shape == (240, 320)


def test_mp4v_codec_timestamps(tmp_path):
    path = tmp_path / "v.mp4"
    truth = generate_video(path, SceneSpec(seed=2, duration_s=3.0, codec="mp4v",
                                           dropped=((1.0, 1.5),)))
    times, frames = _read_times(path)
    assert len(frames) == len(truth.track) == 75
    assert np.abs(times - truth.track["time_s"].to_numpy() * 1000).max() < 1.0


def test_background_difference_centroid_is_the_truth(dropped_video):
    path, truth = dropped_video
    _, frames = _read_times(path)
    stack = np.array(frames)
    background = np.median(stack[:: max(1, len(stack) // 40)], axis=0).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    err = []
    for img, (_, row) in zip(frames, truth.track.iterrows(), strict=True):
        diff = cv2.absdiff(img, background)
        _, mask = cv2.threshold(diff, 25, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if not contours:
            err.append(np.inf)
            continue
        m = cv2.moments(max(contours, key=cv2.contourArea))
        err.append(np.hypot(m["m10"] / m["m00"] - row["x"], m["m01"] / m["m00"] - row["y"]))
    err = np.array(err)
    assert np.mean(err < 1.5) > 0.9
    assert np.median(err) < 0.6


def test_background_is_the_empty_box(dropped_video):
    path, truth = dropped_video
    _, frames = _read_times(path)
    med = np.median(np.array(frames[::5]), axis=0)
    diff = np.abs(med - truth.background.astype(float))
    assert np.median(diff) < 3.0


def test_light_step_and_drift_change_brightness():
    spec = SceneSpec(seed=1, duration_s=4.0, light_steps=((2.0, 0.6),), noise_sigma=2.0)
    means = np.array([(t, f.mean()) for t, f in iter_frames(spec)])
    before = means[means[:, 0] < 2.0, 1].mean()
    after = means[means[:, 0] >= 2.0, 1].mean()
    assert after / before == pytest.approx(0.6, abs=0.02)
    spec = SceneSpec(seed=1, duration_s=4.0, light_drift=0.2, floor="grey")
    means = np.array([f.mean() for _, f in iter_frames(spec)])
    assert means[-1] / means[0] == pytest.approx(1.2, abs=0.03)


def test_rendered_contrast_per_floor():
    for mouse, floor, lo, hi in (("dark", "light", 100, 200), ("light", "dark", 100, 200),
                                 ("dark", "grey", 35, 75)):
        spec = SceneSpec(seed=2, duration_s=0.5, mouse=mouse, floor=floor, noise_sigma=0.0)
        truth = make_scene(spec)
        _, img = next(iter_frames(spec))
        x, y = truth.track.loc[0, ["x", "y"]]
        body = float(img[int(round(y)), int(round(x))])
        poly = np.asarray(truth.config["arenas"][0]["polygon"])
        floor_level = np.median(truth.background[int(poly[0, 1]) + 5:int(poly[2, 1]) - 5,
                                                 int(poly[0, 0]) + 5:int(poly[1, 0]) - 5])
        assert lo < abs(floor_level - body) < hi, (mouse, floor, floor_level, body)


def test_truncate_file_gives_shorter_readable_file(tmp_path):
    path = tmp_path / "cut.mp4"
    truth = generate_video(path, SceneSpec(seed=1, duration_s=5.0))
    size = path.stat().st_size
    new = truncate_file(path, 0.6)
    assert new == path.stat().st_size < size
    times, frames = _read_times(path)
    assert 0 < len(frames) < len(truth.track)
    # every frame read is a frame of the truth, at its time, in order (the decoder may drop
    # the frames of the cut-off last packets, whose neighbours then follow a gap)
    true_ms = truth.track["time_s"].to_numpy() * 1000
    nearest = np.abs(times[:, None] - true_ms[None, :]).min(axis=1)
    assert nearest.max() < 1.0
    assert np.all(np.diff(times) > 0)
    assert times[-1] < true_ms[-1] * 0.8  # the end is gone


def test_damage_bytes_overwrites_in_place(tmp_path):
    path = tmp_path / "d.bin"
    path.write_bytes(bytes(1000))
    off, n = damage_bytes(path, 0.5, 100)
    data = path.read_bytes()
    assert (off, n) == (500, 100) and len(data) == 1000
    assert data[:500] == bytes(500) and data[600:] == bytes(400) and data[500:600] != bytes(100)


def test_command_line_writes_video_truth_and_config(tmp_path, capsys):
    out = tmp_path / "sample" / "clip.mp4"
    assert main(["--out", str(out), "--seed", "1", "--duration", "2", "--chambers", "3"]) == 0
    assert out.exists() and out.stat().st_size > 0
    track = pd.read_csv(tmp_path / "sample" / "clip_truth.csv")
    assert len(track) == 60
    cfg = yaml.safe_load((tmp_path / "sample" / "clip.yaml").read_text())
    assert len(cfg["arenas"][0]["chambers"]) == 3
    assert cfg == make_scene(SceneSpec(seed=1, duration_s=2.0,
                                       arenas=(ArenaSpec(n_chambers=3),))).config
    assert "clip.mp4" in capsys.readouterr().out
