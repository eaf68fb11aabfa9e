"""The start of a real session, for synthetic scenes: the experimenter's gloved hand puts
each mouse into its start chamber, the lid closes (a brief lighting change), and the
guillotine doors, closed until then, are lifted.

:mod:`cpp_tracker.synthetic.scenes` calls the hooks here from its planner and frame loop
when ``SceneSpec.experimenter`` is set; the objects passed in are that module's private
arena, planner and scene types (this module imports nothing from it).

Timeline of one video (seconds, drawn from the seed):

- the box is empty, doors closed (plates over the doorways);
- box by box, a hand (glove + sleeve, several times the mouse's area) reaches in from the
  frame edge nearest to the box, sets the mouse down in its start chamber, stays a moment
  and leaves the frame;
- optionally the lid closes: the brightness changes by ``lid_gain`` for half a second;
- the doors are lifted (the plates vanish); the mouse, confined to its start chamber until
  then, may now go anywhere.

The trial starts when the last hand has left its box (no part of it over the box's outer
walls any more) and the doors are open: :attr:`Session.trial_start_s`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

__all__ = ["Hand", "Session", "plan_session", "with_hands_clear", "confine_until_doors_open",
           "plate_level", "draw_door_plates", "draw_hands", "mouse_visible", "lid_gain"]

_LID_S = 0.5  # how long the lid's lighting change lasts
_SS = 4  # supersampling of the hand's outline


@dataclass(frozen=True)
class Hand:
    """One box's hand: it enters at ``t_in``, arrives at ``t_arrive``, lets the mouse go at
    ``t_release``, starts back at ``t_back`` and is out of the frame at ``t_out``."""

    box: int
    t_in: float
    t_arrive: float
    t_release: float
    t_back: float
    t_out: float
    edge: str  # 'top' | 'bottom' | 'left' | 'right': where the arm comes from
    glove: float  # grey level of the glove
    sleeve: float  # grey level of the sleeve
    wobble: float  # phase of the small movements while holding


@dataclass(frozen=True)
class Session:
    """The experimenter's part of a scene: hands, lid and doors."""

    hands: tuple[Hand, ...]
    lid_s: float | None  # when the lid closes (None: no lighting change)
    lid_gain: float
    doors_open_s: float
    start_chambers: tuple[int, ...]  # chamber position (0 = left) each mouse starts in
    #: per hand, when it has left its box (set by :func:`with_hands_clear`; else ``t_out``)
    clear_s: tuple[float, ...] = ()

    @property
    def trial_start_s(self) -> float:
        """The moment the last hand has left its box and the doors are open."""
        left = self.clear_s or tuple(h.t_out for h in self.hands)
        return max(max(left), self.doors_open_s)


def plan_session(spec, floor_level: float, n_chambers: list[int]) -> Session:
    """The session's timeline, drawn from ``spec.seed`` (and ``spec.doors_open_s`` when
    set)."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 909]))
    t = rng.uniform(0.5, 3.0)
    hands = []
    for k in range(len(spec.arenas)):
        reach, hold, leave = rng.uniform(0.8, 1.4), rng.uniform(1.0, 3.0), rng.uniform(0.8, 1.4)
        glove = _glove_level(rng, floor_level)
        sleeve = float(rng.choice([45.0, 215.0]))
        hands.append(Hand(
            box=k, t_in=t, t_arrive=t + reach, t_release=t + reach + 0.4 * hold,
            t_back=t + reach + hold, t_out=t + reach + hold + leave,
            edge=str(rng.choice(["top", "bottom", "bottom", "left", "right"])),
            glove=glove, sleeve=sleeve, wobble=float(rng.uniform(0, 2 * math.pi)),
        ))
        t = hands[-1].t_out + rng.uniform(0.3, 1.5)
    last_out = hands[-1].t_out
    lid_s = last_out + rng.uniform(0.5, 1.5)
    drawn_open = lid_s + _LID_S + rng.uniform(1.5, 6.0)
    doors = float(spec.doors_open_s) if spec.doors_open_s is not None else drawn_open
    if all(n == 1 for n in n_chambers):  # open fields: no doors to wait for
        doors = 0.0
    starts = tuple(_start_chamber(rng, n) for n in n_chambers)
    return Session(hands=tuple(hands), lid_s=lid_s if spec.lid_gain != 1.0 else None,
                   lid_gain=float(spec.lid_gain), doors_open_s=doors, start_chambers=starts)


def _glove_level(rng: np.random.Generator, floor_level: float) -> float:
    """A glove grey (blue nitrile ~ 110-150, white latex ~ 215-235) at least 45 levels
    from the floor, as a glove a scientist can see on the video would be."""
    for _ in range(50):
        level = float(rng.choice([rng.uniform(105, 150), rng.uniform(215, 235)]))
        if abs(level - floor_level) >= 45:
            return level
    return 120.0


def _start_chamber(rng: np.random.Generator, n: int) -> int:
    """Often the neutral centre chamber of a three-chamber box; else any chamber."""
    if n == 3 and rng.random() < 0.7:
        return 1
    return int(rng.integers(n))


# ----------------------------------------------------------------- the mouse's plan
def confine_until_doors_open(planner, session: Session, box: int) -> None:
    """Plan the start of one mouse: set down in its start chamber (a hold until the hand
    lets it go, a pause), then walks and rests inside that chamber until the doors open.
    ``planner`` is scenes' planner; its time advances to the doors' opening or beyond."""
    pos_idx = session.start_chambers[box]
    hand = session.hands[box]
    planner.pos = planner.sample(pos_idx, wall_bias=0.0)
    planner.add_hold("rest", hand.t_release + planner.rng.uniform(0.3, 1.0))
    rng = planner.rng
    while planner.t < session.doors_open_s:
        if rng.random() < 0.35:
            planner.rest(float(rng.uniform(0.3, 2.0)))
        else:
            planner.walk([planner.pos.copy(), planner.sample_away(pos_idx, planner.pos)])


def mouse_visible(session: Session, box: int, t: float) -> bool:
    """The mouse is in the box (not yet in the hand) from its release on."""
    return t >= session.hands[box].t_release


# ----------------------------------------------------------------- drawing
def plate_level(wall_level: float, floor_level: float) -> float:
    """The grey of a closed plate seen from above: the wall's colour, a little lighter
    (dark walls) or darker (light ones) where its top edge catches the light, and at
    least 40 levels from the floor, or a closed door would be invisible (in the wall's
    direction from the floor)."""
    level = min(255.0, wall_level + 25.0) if wall_level < 128 else wall_level - 25.0
    if abs(level - floor_level) < 40:
        level = floor_level - 45 if wall_level < floor_level else floor_level + 45
    return float(np.clip(level, 5.0, 250.0))


def draw_door_plates(frame: np.ndarray, arenas, level: float, session: Session,
                     t: float) -> None:
    """Guillotine plates over every doorway (grey ``level``, see :func:`plate_level`)
    until the doors are lifted."""
    if t >= session.doors_open_s:
        return
    for ar in arenas:
        for dr in ar.doors:
            half = dr.gap / 2 + 0.5
            nvec = dr.n * (ar.tw / 2)
            a_, b_ = dr.c - half * dr.d, dr.c + half * dr.d
            quad = np.array([a_ - nvec, a_ + nvec, b_ + nvec, b_ - nvec])
            _paint(frame, quad, level)


def draw_hands(frame: np.ndarray, arenas, targets: list[np.ndarray], session: Session,
               t: float) -> None:
    """Every hand in the frame at ``t``: the sleeve from the frame's edge, the gloved wrist,
    palm and fingers over the box (drawn over everything: it is above the box)."""
    H, W = frame.shape
    for hand in session.hands:
        if not hand.t_in <= t < hand.t_out:
            continue
        for poly, level in _hand_shapes(hand, arenas[hand.box].L0, targets[hand.box], t, W, H):
            _paint(frame, poly, level, clip=(W, H))


def _hand_shapes(hand: Hand, L: float, target, t: float, W: int,
                 H: int) -> list[tuple[np.ndarray, float]]:
    """The hand's outlines (frame pixels) at ``t`` with their grey levels."""
    outward = _edge_direction(hand.edge)
    target = np.asarray(target, float)
    outside = _beyond_edge(target, outward, W, H, 2.0 * L)
    palm = _palm_position(hand, t, target, outside)
    return _arm_shapes(palm, outward, L, hand, W, H)


def with_hands_clear(session: Session, arenas, targets: list[np.ndarray], W: int, H: int,
                     fps: float) -> Session:
    """``session`` with the times each hand has left its box: the first frame time on its
    way out when no point of its outline lies within the box's outer walls."""
    clear = []
    for hand in session.hands:
        x0, y0, x1, y1 = arenas[hand.box].outer
        t = hand.t_back
        while t < hand.t_out:
            pts = np.vstack([p for p, _ in _hand_shapes(hand, arenas[hand.box].L0,
                                                        targets[hand.box], t, W, H)])
            over = ((pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) & (pts[:, 1] < y1))
            if not over.any():
                break
            t += 1.0 / fps
        clear.append(min(t, hand.t_out))
    return replace(session, clear_s=tuple(clear))


def _edge_direction(edge: str) -> np.ndarray:
    return {"top": np.array([0.0, -1.0]), "bottom": np.array([0.0, 1.0]),
            "left": np.array([-1.0, 0.0]), "right": np.array([1.0, 0.0])}[edge]


def _beyond_edge(p: np.ndarray, outward: np.ndarray, W: int, H: int, extra: float) -> np.ndarray:
    """The point straight out from ``p`` past the frame's edge by ``extra`` px."""
    if outward[0] < 0:
        d = p[0] + extra
    elif outward[0] > 0:
        d = W - p[0] + extra
    elif outward[1] < 0:
        d = p[1] + extra
    else:
        d = H - p[1] + extra
    return p + outward * d


def _palm_position(hand: Hand, t: float, target: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Where the palm is: in from outside, hovering over the mouse with small movements,
    out again (smooth starts and stops)."""
    if t < hand.t_arrive:
        u = _ease((t - hand.t_in) / (hand.t_arrive - hand.t_in))
        return outside + (target - outside) * u
    if t >= hand.t_back:
        u = _ease((t - hand.t_back) / (hand.t_out - hand.t_back))
        return target + (outside - target) * u
    tau = t - hand.t_arrive
    jiggle = np.array([math.sin(2.1 * tau + hand.wobble), math.cos(1.7 * tau + hand.wobble)])
    return target + 2.0 * jiggle


def _ease(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def _arm_shapes(palm: np.ndarray, outward: np.ndarray, L: float, hand: Hand, W: int,
                H: int) -> list[tuple[np.ndarray, float]]:
    """Sleeve (a wide band to past the frame's edge), gloved wrist, palm and four fingers
    pointing into the box. A hand is about twice as long as a mouse's body and as wide
    as one: ``L`` (the body length) times 1.4 sets its scale."""
    L = 1.4 * L
    side = np.array([-outward[1], outward[0]])
    wrist = palm + outward * 0.9 * L
    far = palm + outward * (W + H)
    sleeve = np.array([wrist + side * 0.6 * L, far + side * 0.6 * L,
                       far - side * 0.6 * L, wrist - side * 0.6 * L])
    glove = [_ellipse(palm + outward * 0.55 * L, outward, 0.55 * L, 0.42 * L),
             _ellipse(palm, outward, 0.6 * L, 0.5 * L)]
    for j, off in enumerate((-0.33, -0.11, 0.11, 0.33)):
        length = (0.45 + 0.08 * (1.5 - abs(j - 1.5))) * L
        base = palm - outward * 0.45 * L + side * off * L
        glove.append(_ellipse(base - outward * length / 2, outward, length / 2, 0.1 * L))
    thumb_base = palm - side * 0.45 * L
    glove.append(_ellipse(thumb_base - side * 0.2 * L - outward * 0.1 * L,
                          _unit(side + 0.5 * outward), 0.32 * L, 0.11 * L))
    return [(sleeve, hand.sleeve)] + [(poly, hand.glove) for poly in glove]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.hypot(v[0], v[1])), 1e-9)


def _ellipse(c: np.ndarray, u: np.ndarray, a: float, b: float, n: int = 28) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    ca, sb = a * np.cos(t), b * np.sin(t)
    return np.stack([c[0] + ca * u[0] - sb * u[1], c[1] + ca * u[1] + sb * u[0]], 1)


def _paint(frame: np.ndarray, poly: np.ndarray, level: float,
           clip: tuple[int, int] | None = None) -> None:
    """Fill ``poly`` (frame pixels) with ``level``, anti-aliased by 4x supersampling, inside
    its bounding box only."""
    H, W = frame.shape
    poly = np.asarray(poly, float)
    if clip is not None:  # keep far-away corners in range for the fixed-point fill
        poly = np.clip(poly, -4.0 * W, 5.0 * W)
    x0 = max(0, int(math.floor(poly[:, 0].min())) - 1)
    y0 = max(0, int(math.floor(poly[:, 1].min())) - 1)
    x1 = min(W, int(math.ceil(poly[:, 0].max())) + 2)
    y1 = min(H, int(math.ceil(poly[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    m = np.zeros(((y1 - y0) * _SS, (x1 - x0) * _SS), np.uint8)
    pts = np.round(((poly - [x0, y0] + 0.5) * _SS - 0.5) * 16).astype(np.int32)
    cv2.fillPoly(m, [pts], 255, cv2.LINE_8, 4)
    a = cv2.resize(m, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    sub = frame[y0:y1, x0:x1]
    sub += a * (np.float32(level) - sub)


def lid_gain(session: Session | None, t: float) -> float:
    """The brightness factor of the lid closing (1 outside its half second)."""
    if session is None or session.lid_s is None:
        return 1.0
    return session.lid_gain if session.lid_s <= t < session.lid_s + _LID_S else 1.0
