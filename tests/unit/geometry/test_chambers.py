"""Geometry: which piece a point is in, hysteresis, clipping of door lines."""

import dataclasses

import numpy as np
import pytest
import shapely

from cpp_tracker.config.settings import parse_config
from cpp_tracker.geometry.chambers import UNKNOWN, assign_chambers, build_layout


def two_chamber(door_line=((100, 0), (100, 100)), hysteresis=5.0, backdate=True):
    raw = {
        "arenas": [
            {
                "name": "box",
                "polygon": [[0, 0], [200, 0], [200, 100], [0, 100]],
                "doors": [{"name": "d", "line": [list(p) for p in door_line]}],
                "chambers": [{"name": "a", "point": [50, 50]}, {"name": "b", "point": [150, 50]}],
            }
        ],
        "chambers": {"hysteresis_px": hysteresis, "backdate_crossings": backdate},
    }
    config = parse_config(raw)
    return build_layout(
        config.arenas[0], config.chambers.hysteresis_px, config.chambers.backdate_crossings
    )


def test_points_fall_in_their_piece():
    layout = two_chamber(hysteresis=0)
    x = np.array([10.0, 99.0, 101.0, 190.0])
    y = np.array([50.0, 50.0, 50.0, 99.0])
    assert layout.raw_chamber(x, y).tolist() == [0, 0, 1, 1]


def test_pieces_follow_config_order_not_geometry_order():
    raw_layout = two_chamber()
    assert raw_layout.chamber_names == ("a", "b")
    # chamber 'a' is the left piece
    assert raw_layout.pieces[0].centroid.x < 100 < raw_layout.pieces[1].centroid.x


def test_door_line_short_of_the_walls_still_cuts_the_arena():
    # drawn by hand 3 px short of both walls: it is extended before cutting
    layout = two_chamber(door_line=((100, 3), (100, 97)))
    assert len(layout.pieces) == 2
    assert layout.pieces[0].area == pytest.approx(100 * 100)


def test_door_line_longer_than_the_arena_is_clipped():
    layout = two_chamber(door_line=((100, -50), (100, 150)))
    assert layout.door_segments[0].length == pytest.approx(100)


def test_angled_door_line():
    layout = two_chamber(door_line=((80, 0), (120, 100)))
    # (95, 20) is left of the slanted line x = 80 + 0.4*y -> at y=20 the line is x=88: right side
    assert layout.raw_chamber(np.array([95.0, 85.0]), np.array([20.0, 80.0])).tolist() == [1, 0]


def test_hysteresis_keeps_chamber_until_margin_is_passed():
    layout = two_chamber(hysteresis=5.0, backdate=False)
    xs = np.array([90, 98, 102, 104, 106, 103, 98, 96, 94], dtype=float)
    ys = np.full(len(xs), 50.0)
    codes, state = assign_chambers(xs, ys, np.ones(len(xs), bool), layout)
    # crosses to b only beyond 105, back to a only below 95
    assert codes.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0]
    assert state == 0


def test_backdated_crossing_starts_where_the_line_was_crossed():
    layout = two_chamber(hysteresis=5.0)
    xs = np.array([90, 98, 102, 104, 106, 103, 98, 96, 94], dtype=float)
    codes, _ = assign_chambers(xs, np.full(len(xs), 50.0), np.ones(len(xs), bool), layout)
    # the crossing is confirmed at 106 and dated back to 102; the return at 94 back to 98
    assert codes.tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_excursion_short_of_the_margin_is_ignored_even_when_backdating():
    layout = two_chamber(hysteresis=5.0)
    xs = np.array([95, 99, 101, 103, 104, 101, 99, 95], dtype=float)
    codes, _ = assign_chambers(xs, np.full(len(xs), 50.0), np.ones(len(xs), bool), layout)
    assert codes.tolist() == [0] * len(xs)


def test_backdating_keeps_undetected_frames_unknown():
    layout = two_chamber(hysteresis=5.0)
    xs = np.array([90, 102, np.nan, 104, 108], dtype=float)
    codes, _ = assign_chambers(xs, np.full(5, 50.0), np.isfinite(xs), layout)
    assert codes.tolist() == [0, 1, UNKNOWN, 1, 1]


def test_no_hysteresis_switches_at_the_line():
    layout = two_chamber(hysteresis=0.0)
    xs = np.array([99.0, 101.0, 99.0])
    codes, _ = assign_chambers(xs, np.full(3, 50.0), np.ones(3, bool), layout)
    assert codes.tolist() == [0, 1, 0]


def test_unknown_before_first_detection_and_when_not_detected():
    layout = two_chamber()
    xs = np.array([np.nan, np.nan, 50.0, np.nan, 150.0])
    det = np.isfinite(xs)
    codes, _ = assign_chambers(xs, np.full(5, 50.0), det, layout)
    assert codes.tolist() == [UNKNOWN, UNKNOWN, 0, UNKNOWN, 1]


def test_missing_frames_do_not_reset_hysteresis():
    layout = two_chamber(hysteresis=5.0)
    # in a, lost, then found 3 px past the door: still a (within the margin)
    xs = np.array([90.0, np.nan, 103.0])
    codes, _ = assign_chambers(xs, np.full(3, 50.0), np.isfinite(xs), layout)
    assert codes.tolist() == [0, UNKNOWN, 0]


def test_state_carries_the_last_chamber_into_the_next_call():
    layout = two_chamber(hysteresis=5.0)
    first, state = assign_chambers(np.array([150.0]), np.array([50.0]), np.ones(1, bool), layout)
    assert state == 1
    # 3 px into 'a' is within the margin of 'b': still 'b' after the state is carried over
    codes, _ = assign_chambers(np.array([97.0]), np.array([50.0]), np.ones(1, bool), layout, state)
    assert codes.tolist() == [1]


def test_three_chambers_with_neutral_centre():
    config = parse_config(
        {
            "arenas": [
                {
                    "name": "box",
                    "polygon": [[0, 0], [300, 0], [300, 100], [0, 100]],
                    "doors": [
                        {"name": "d1", "line": [[100, 0], [100, 100]]},
                        {"name": "d2", "line": [[200, 0], [200, 100]]},
                    ],
                    "chambers": [
                        {"name": "paired", "point": [50, 50]},
                        {"name": "neutral", "point": [150, 50]},
                        {"name": "unpaired", "point": [250, 50]},
                    ],
                }
            ],
            "chambers": {"hysteresis_px": 0},
        }
    )
    layout = build_layout(config.arenas[0], 0)
    got = layout.raw_chamber(np.array([20.0, 150.0, 280.0]), np.array([50.0, 50.0, 50.0]))
    assert got.tolist() == [0, 1, 2]


def test_assignment_in_blocks_equals_one_block(monkeypatch):
    """Distances are computed a block of frames at a time; a crossing whose backdated
    frames reach into the previous block must come out as with one block."""
    import cpp_tracker.geometry.chambers as geometry
    from cpp_tracker.config.settings import parse_config

    config = parse_config({"arenas": [{
        "name": "a", "polygon": [[0, 0], [200, 0], [200, 100], [0, 100]],
        "doors": [{"name": "d", "line": [[100, 0], [100, 100]]}],
        "chambers": [{"name": "l", "point": [50, 50]}, {"name": "r", "point": [150, 50]}],
    }]})
    rng = np.random.default_rng(3)
    # a slow walk back and forth across the door, with rests inside the margin
    x = 100 + 30 * np.sin(np.arange(3000) / 97.0) + rng.normal(0, 2, 3000)
    y = np.full(3000, 50.0)
    det = rng.random(3000) > 0.05
    x[~det] = np.nan
    results = {}
    for block in (65536, 7, 64):
        monkeypatch.setattr(geometry, "ASSIGN_BLOCK", block)
        for backdate in (True, False):
            layout = geometry.build_layout(config.arenas[0], 6.0)
            layout = dataclasses.replace(layout, backdate_crossings=backdate)
            results[block, backdate] = geometry.assign_chambers(x, y, det, layout)
    for backdate in (True, False):
        one = results[65536, backdate]
        assert (one[0] >= 0).sum() > 2000 and len(set(one[0].tolist())) == 3  # has teeth
        for block in (7, 64):
            got = results[block, backdate]
            assert np.array_equal(got[0], one[0]) and got[1] == one[1]


# -- the body_fraction rule -------------------------------------------------------------
from cpp_tracker.geometry.chambers import assign_by_body_fraction, keypoint_shares  # noqa: E402


def _two(shares_in_1):
    s1 = np.asarray(shares_in_1, dtype=float)
    return np.stack([1 - s1, s1], axis=1)


def test_body_fraction_enters_at_enter_and_leaves_below_exit():
    shares = _two([0.0, 0.4, 0.6, 0.69, 0.7, 0.5, 0.35, 0.31, 0.29, 0.0])
    codes, state = assign_by_body_fraction(shares, np.ones(10, bool), 0.7, 0.3)
    assert codes.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert state == 0


def test_a_mouse_half_across_a_door_stays_in_the_chamber_it_came_from():
    half = [0.5] * 50
    for start, before in ((0, 0.0), (1, 1.0)):
        codes, _ = assign_by_body_fraction(_two([before, *half, before]),
                                           np.ones(52, bool), 0.7, 0.3)
        assert set(codes.tolist()) == {start}
    # the point rule would give the second half of a slow crossing to the other side
    codes, _ = assign_by_body_fraction(_two(np.linspace(0, 0.69, 40)), np.ones(40, bool),
                                       0.7, 0.3)
    assert set(codes.tolist()) == {0}


def test_body_fraction_keeps_the_chamber_through_frames_without_detection():
    shares = _two([1.0, 0.8, np.nan, np.nan, 0.5, 0.2])
    det = np.array([True, True, False, False, True, True])
    codes, _ = assign_by_body_fraction(shares, det, 0.7, 0.3)
    assert codes.tolist() == [1, 1, UNKNOWN, UNKNOWN, 1, 0]
    # the state carries over between calls (blocks of a long track)
    codes, state = assign_by_body_fraction(_two([0.5]), [True], 0.7, 0.3, state=1)
    assert codes.tolist() == [1] and state == 1
    codes, state = assign_by_body_fraction(_two([0.5]), [False], 0.7, 0.3, state=1)
    assert codes.tolist() == [UNKNOWN] and state == 1


def test_body_fraction_in_three_chambers_goes_where_most_of_the_mouse_is():
    # the mouse leaves chamber 0 (below 0.3) with no chamber at 0.7: the largest share wins
    shares = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.25, 0.45, 0.30],
                       [0.1, 0.3, 0.6], [0.0, 0.25, 0.75]])
    codes, _ = assign_by_body_fraction(shares, np.ones(5, bool), 0.7, 0.3)
    assert codes.tolist() == [0, 0, 1, 1, 2]
    # enter 0.5 / exit 0.5: a majority rule; a tie keeps the chamber
    codes, _ = assign_by_body_fraction(_two([0.0, 0.5, 0.51, 0.5, 0.49]), np.ones(5, bool),
                                       0.5, 0.5)
    assert codes.tolist() == [0, 0, 1, 1, 0]


def test_keypoint_shares_count_the_keypoints_in_each_chamber():
    layout = two_chamber(hysteresis=0)
    x = np.array([[10.0, 20.0, 150.0, 160.0], [10.0, 120.0, 150.0, np.nan],
                  [np.nan] * 4])
    y = np.full_like(x, 50.0)
    shares = keypoint_shares(layout, x, y)
    assert np.allclose(shares[0], [0.5, 0.5])
    assert np.allclose(shares[1], [1 / 3, 2 / 3])
    assert np.isnan(shares[2]).all()
    codes, _ = assign_by_body_fraction(shares, np.isfinite(shares).all(axis=1), 0.6, 0.4)
    assert codes.tolist() == [0, 1, UNKNOWN]


# -- the fast point-in-piece test (margin_distances) equals the exact distances ----------
def _layouts_for_the_fast_path():
    """Straight, slanted and T-shaped doors, a non-convex arena, margins 0 to 30 px."""
    slanted = {"name": "s", "polygon": [[0, 0], [200, 0], [220, 100], [-10, 110]],
               "doors": [{"name": "d", "line": [[80.3, 0], [121.7, 105.1]]}],
               "chambers": [{"name": "a", "point": [40, 50]}, {"name": "b", "point": [170, 50]}]}
    ell = {"name": "l", "polygon": [[0, 0], [300, 0], [300, 100], [100, 100], [100, 250],
                                    [0, 250]],
           "doors": [{"name": "d1", "line": [[0, 100], [100, 100]]},
                     {"name": "d2", "line": [[100, 0], [100, 100]]},
                     {"name": "d3", "line": [[200, 0], [200, 100]]}],
           "chambers": [{"name": "a", "point": [50, 200]}, {"name": "b", "point": [50, 50]},
                        {"name": "c", "point": [150, 50]}, {"name": "d", "point": [250, 50]}]}
    tee = {"name": "t", "polygon": [[0, 0], [200, 0], [200, 200], [0, 200]],
           "doors": [{"name": "d1", "line": [[0, 100], [200, 100]]},
                     {"name": "d2", "line": [[100, 100], [100, 200]]}],
           "chambers": [{"name": "a", "point": [100, 50]}, {"name": "b", "point": [50, 150]},
                        {"name": "c", "point": [150, 150]}]}
    for arena in (slanted, ell, tee):
        config = parse_config({"arenas": [arena]})
        for margin in (0.0, 1.0, 6.0, 30.0):
            yield build_layout(config.arenas[0], margin)


def _hard_points(layout, rng):
    """Points on door lines (ends included), piece corners and edges, arena corners, just
    either side of the margin from a door, outside the arena, and anywhere."""
    pts = []
    for piece in layout.pieces:
        ring = np.asarray(piece.exterior.coords)
        pts.append(ring)
        for a, b in zip(ring[:-1], ring[1:], strict=True):
            t = rng.random((40, 1))
            pts.append(a + t * (b - a))
    for seg in (part for door in layout.door_segments for part in shapely.get_parts(door)):
        (x1, y1), (x2, y2) = np.asarray(seg.coords)[[0, -1]]
        t = np.linspace(0, 1, 101)[:, None]
        on = np.array([x1, y1]) + t * np.array([x2 - x1, y2 - y1])
        normal = np.array([y1 - y2, x2 - x1]) / np.hypot(x2 - x1, y2 - y1)
        pts.append(on)
        for d in (layout.hysteresis_px, 1.1 * layout.hysteresis_px + 2):
            for eps in (-1e-9, 0.0, 1e-9):
                pts.extend([on + (d + eps) * normal, on - (d + eps) * normal])
    x0, y0, x1, y1 = layout.polygon.bounds
    pts.append(np.column_stack([rng.uniform(x0 - 40, x1 + 40, 3000),
                                rng.uniform(y0 - 40, y1 + 40, 3000)]))
    pts.append([[x0 - 500, y0 - 500], [x1 + 3, y1], [np.nan, np.nan]])
    return np.concatenate([np.asarray(p, dtype=float) for p in pts])


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the NaN point
def test_margin_distances_decide_as_the_exact_distances():
    rng = np.random.default_rng(19)
    for layout in _layouts_for_the_fast_path():
        xy = _hard_points(layout, rng)
        exact = layout.distances(xy[:, 0], xy[:, 1])
        fast = layout.margin_distances(xy[:, 0], xy[:, 1])
        assert np.array_equal(np.argmin(fast, axis=1), np.argmin(exact, axis=1))
        assert np.array_equal(fast > layout.hysteresis_px, exact > layout.hysteresis_px)
        measured = np.isfinite(fast)
        assert np.array_equal(fast[measured], exact[measured])
        # teeth: most points were answered by the cores, some on the lines exactly
        assert (~measured).any(axis=1).sum() > 100
        assert (exact == 0).sum(axis=1).max() >= 2


def test_assignment_with_the_fast_path_equals_the_exact_one(monkeypatch):
    from cpp_tracker.geometry.chambers import ChamberLayout, assign_chambers_and_pieces

    rng = np.random.default_rng(5)
    n = 20000
    for layout in _layouts_for_the_fast_path():
        x0, y0, x1, y1 = layout.polygon.bounds
        # a random walk over the whole arena (and a little outside), often on the doors
        x = np.clip(np.cumsum(rng.normal(0, 4, n)) % (x1 - x0 + 20) + x0 - 10, x0 - 10, x1 + 10)
        y = np.clip(np.cumsum(rng.normal(0, 4, n)) % (y1 - y0 + 20) + y0 - 10, y0 - 10, y1 + 10)
        seg = shapely.get_coordinates(layout.door_segments[0])
        on = rng.random(n) < 0.05
        t = rng.random(on.sum())
        x[on] = seg[0, 0] + t * (seg[-1, 0] - seg[0, 0])
        y[on] = seg[0, 1] + t * (seg[-1, 1] - seg[0, 1])
        det = rng.random(n) > 0.03
        for backdate in (True, False):
            lay = dataclasses.replace(layout, backdate_crossings=backdate)
            fast = assign_chambers_and_pieces(x, y, det, lay)
            with monkeypatch.context() as m:
                m.setattr(ChamberLayout, "margin_distances", ChamberLayout.distances)
                exact = assign_chambers_and_pieces(x, y, det, lay)
            assert np.array_equal(fast[0], exact[0]) and fast[1] == exact[1]
            assert np.array_equal(fast[2], exact[2])
            assert len(set(exact[0].tolist())) == len(layout.pieces) + 1  # has teeth


def _reference_hysteresis(raw, dist, margin, backdate, state=UNKNOWN):
    """The hysteresis of the docs, frame by frame over the detected frames' pieces ``raw``
    and distances ``dist`` (written independently of the module's loops)."""
    out = []
    cur, last_in = state, -1
    for i, r in enumerate(raw):
        if cur == UNKNOWN or r == cur:
            cur, last_in = r, i
        elif dist[i][cur] > margin:
            if backdate:
                out[last_in + 1 : i] = raw[last_in + 1 : i]
            cur, last_in = r, i
        out.append(cur)
    return out


@pytest.mark.parametrize("run_frames", [1, 10**9])  # a run at a time / frame by frame
def test_hysteresis_equals_the_reference_whatever_the_blocks(monkeypatch, run_frames):
    import cpp_tracker.geometry.chambers as geometry

    monkeypatch.setattr(geometry, "_RUN_FRAMES", run_frames)
    rng = np.random.default_rng(11)
    layouts = list(_layouts_for_the_fast_path())
    for trial in range(24):
        layout = layouts[trial % len(layouts)]
        x0, y0, x1, y1 = layout.polygon.bounds
        n = 3000
        # slow walks that rest near the doors, jitter across them and jump
        speed = rng.choice([0.5, 3.0, 15.0])
        x = np.clip(x0 + (x1 - x0) * rng.random() + np.cumsum(rng.normal(0, speed, n)),
                    x0 - 5, x1 + 5)
        y = np.clip(y0 + (y1 - y0) * rng.random() + np.cumsum(rng.normal(0, speed, n)),
                    y0 - 5, y1 + 5)
        det = rng.random(n) > 0.05
        backdate = bool(trial % 2)
        lay = dataclasses.replace(layout, backdate_crossings=backdate)
        dist = lay.distances(x[det], y[det])
        raw = np.argmin(dist, axis=1).tolist()
        state = int(rng.integers(-1, len(layout.pieces)))
        want = _reference_hysteresis(raw, dist.tolist(), layout.hysteresis_px, backdate, state)
        for block in (7, 64, 65536):
            monkeypatch.setattr(geometry, "ASSIGN_BLOCK", block)
            codes, last = geometry.assign_chambers(x, y, det, lay, state)
            assert codes[det].tolist() == want and (codes[~det] == UNKNOWN).all()
            assert last == want[-1]
