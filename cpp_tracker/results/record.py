"""The run record: what ``run.json`` holds, as one typed value.

Every result folder ends with ``run.json``: which video(s), config, version and command made
the numbers, which frames were used and lost, and the quality verdict per arena. ``track``
builds a :class:`RunRecord`, ``reprocess`` derives a new one through
:meth:`RunRecord.reprocessed`, and every reader (summaries, figures, reports, batch) asks
the record, never the JSON. This module is the only place that knows the file's keys.

The file carries ``schema_version`` (:data:`SCHEMA_VERSION`). A file without one was written
by cpp-tracker before the record existed (schema 0): it is read, missing blocks taking
their empty values. A file of a newer schema is refused with one sentence naming the version
that wrote it. The blocks are frozen dataclasses; mappings inside them (the resolved config,
per-sample provenance) are plain JSON data and are never modified here.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import OutputError
from .outputs import read_json, write_json

__all__ = [
    "SCHEMA_VERSION",
    "RUN_FILE",
    "VideoSource",
    "Window",
    "TrialStartRecord",
    "ConfigRecord",
    "ResumeRecord",
    "TimeBaseRecord",
    "TimingRecord",
    "LightingRecord",
    "ArenaQC",
    "ArenaStats",
    "DetectionRecord",
    "ReaderRecord",
    "ParallelRecord",
    "TrackOrigin",
    "ReprocessNote",
    "HistoryEntry",
    "RunRecord",
    "read_run_record",
    "read_record_file",
    "read_previous_record",
    "write_run_record",
    "now_iso",
]

#: The layout of ``run.json`` this version writes (and the newest it reads).
SCHEMA_VERSION = 1
RUN_FILE = "run.json"

# a field with this metadata is left out of the file when it is None (keys that only some
# runs write, e.g. the details of a resumed run)
_OPTIONAL = {"optional": True}


def now_iso() -> str:
    """The local time now, to the second, with its UTC offset (the record's timestamps)."""
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- plumbing
def _to_plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return value.to_dict() if hasattr(value, "to_dict") else _block_to_dict(value)
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _block_to_dict(block: Any) -> dict:
    out = {}
    for f in fields(block):
        value = getattr(block, f.name)
        if value is None and f.metadata.get("optional"):
            continue
        out[f.name] = _to_plain(value)
    return out


def _mapping(data: Any, what: str) -> Mapping:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise TypeError(f"'{what}' is not a mapping")
    return data


def _flat_block(cls: type, data: Any, what: str, **converted: Any):
    """``cls`` from the keys of ``data`` that name its fields (absent ones take their
    defaults); ``converted`` gives the values of the nested blocks."""
    data = _mapping(data, what)
    kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
    kwargs.update(converted)
    return cls(**kwargs)


def _texts(values: Any, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"'{what}' is not a list")
    return tuple(str(v) for v in values)


def _rows(values: Any, what: str) -> tuple[Mapping, ...]:
    if values is None:
        return ()
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"'{what}' is not a list")
    return tuple(_mapping(v, what) for v in values)


# -------------------------------------------------------------------------------- blocks
class _Block:
    """A record block read from the mapping of the same name (absent keys: defaults)."""

    @classmethod
    def from_dict(cls, data: Any):
        return _flat_block(cls, data, cls.__name__)


@dataclass(frozen=True)
class VideoSource(_Block):
    """One input file: what the container says, its identity, and where it sits in the
    session (``frame_offset``/``time_offset_s``: its first frame on the session's clock)."""

    path: str = ""
    absolute_path: str | None = None
    size_bytes: int | None = None
    mtime: float | None = None
    mtime_iso: str | None = None
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    nominal_fps: float | None = None
    nominal_frame_count: int | None = None
    nominal_duration_s: float | None = None
    fingerprint: str | None = None
    # None for a chunk file the run did not reach (the window ended before it)
    frame_offset: int | None = None
    time_offset_s: float | None = None
    frames_decoded: int | None = None

    def existing_path(self, prefer_absolute: bool = False) -> Path | None:
        """The file as recorded (as given, then absolute; or the other way round) when it
        is still there."""
        order = [self.path, self.absolute_path]
        for value in reversed(order) if prefer_absolute else order:
            if value and Path(value).is_file():
                return Path(value)
        return None

    @property
    def shown_path(self) -> str:
        """The path to name in a message."""
        return self.absolute_path or self.path or "(none recorded)"


@dataclass(frozen=True)
class Window(_Block):
    """The stretch of the recording analysed; result times count from ``start_s``."""

    start_s: float | None = None
    end_s: float | None = None
    note: str | None = None


@dataclass(frozen=True)
class TrialStartRecord(_Block):
    """When the trial starts: as asked for (``requested``: ``"auto"`` or seconds; ``source``:
    the config's ``trial.start`` or a ``start_s`` given with the run), where it was put
    (``start_s``, seconds into the recording; the window starts there), whether ``auto``
    found it, and why (``reason``, one sentence). Written only when a start was asked for."""

    requested: str | float | None = None
    source: str | None = None
    start_s: float | None = None
    found: bool | None = None
    reason: str | None = None
    hand_last_seen_s: float | None = field(default=None, metadata=_OPTIONAL)
    door_last_closed_s: float | None = field(default=None, metadata=_OPTIONAL)
    arm_last_seen_s: float | None = field(default=None, metadata=_OPTIONAL)

    @property
    def label(self) -> str:
        """How a figure names it: 'trial start 15.2 s (auto)'."""
        how = "auto" if self.requested == "auto" else "given"
        if self.found is False:
            return "trial start not found: counted from the video's start"
        return f"trial start {self.start_s or 0.0:.1f} s ({how})"


@dataclass(frozen=True)
class ConfigRecord(_Block):
    """The config that made the results: its file, hash, every resolved value, and the
    geometry in video pixels as tracked (a template in cm mapped by its corners)."""

    source: str | None = None
    hash: str | None = None
    resolved: Mapping | None = None
    geometry_px: Sequence | None = field(default=None, metadata=_OPTIONAL)
    #: how a frame's chamber is decided (``chambers.rule`` and its numbers), e.g.
    #: ``{"rule": "body_fraction", "enter_fraction": 0.7, "exit_fraction": 0.3}``
    entry_rule: Mapping | None = field(default=None, metadata=_OPTIONAL)


@dataclass(frozen=True)
class ResumeRecord(_Block):
    """Whether the run continued an interrupted one, and from where."""

    attempts: int = 1
    resumed: bool = False
    # the details below are written for a resumed run only
    first_started: str | None = None
    resumed_from_frame: int | None = None
    resumed_from_time_s: float | None = None
    resumed_after_tracking: bool | None = None
    seek_confirmed: bool | None = None
    # frames each time segment had tracked before the interruption (segmented runs only)
    segment_frames_kept: Sequence[int] | None = field(default=None, metadata=_OPTIONAL)

    def to_dict(self) -> dict:
        data = _block_to_dict(self)
        if not self.resumed:
            data = {k: data[k] for k in ("attempts", "resumed") if k in data}
        return data

    @property
    def resumed_from_s(self) -> float | None:
        """Where a resumed run continued (result time), None for a fresh run."""
        return self.resumed_from_time_s if self.resumed else None


@dataclass(frozen=True)
class TimingRecord(_Block):
    """The parts of the time base that follow from the frame durations (redone by every
    analysis, so reprocess replaces them)."""

    median_interval_s: float | None = None
    measured_fps: float | None = None
    duration_s: float | None = None
    observed_s: float | None = None
    read_fraction_of_nominal: float | None = None
    gaps: tuple[Mapping, ...] = ()

    @classmethod
    def from_dict(cls, data: Any) -> TimingRecord:
        data = _mapping(data, "time_base")
        return _flat_block(cls, data, "time_base", gaps=_rows(data.get("gaps"), "gaps"))


@dataclass(frozen=True)
class TimeBaseRecord(_Block):
    """Where the times come from and how many frames were read, tracked and lost."""

    timestamp_source: str | None = None
    timestamps_repaired: int | None = None
    frames_decoded: int | None = None
    frames_decoded_this_run: int | None = None
    frames_tracked: int | None = None
    stride: int | None = None
    nominal_fps: float | None = None
    expected_duration_s: float | None = None
    median_interval_s: float | None = None
    measured_fps: float | None = None
    duration_s: float | None = None
    observed_s: float | None = None
    read_fraction_of_nominal: float | None = None
    gaps: tuple[Mapping, ...] = ()
    unreadable: tuple[Mapping, ...] = ()

    @classmethod
    def from_dict(cls, data: Any) -> TimeBaseRecord:
        data = _mapping(data, "time_base")
        return _flat_block(
            cls,
            data,
            "time_base",
            gaps=_rows(data.get("gaps"), "time_base.gaps"),
            unreadable=_rows(data.get("unreadable"), "time_base.unreadable"),
        )

    def with_timing(self, timing: TimingRecord) -> TimeBaseRecord:
        """This time base with the figures of a new analysis."""
        return replace(self, **{f.name: getattr(timing, f.name) for f in fields(TimingRecord)})

    @property
    def gaps_missing_s(self) -> float:
        """Seconds lost in gaps between timestamps."""
        return float(sum(g.get("missing_s", 0.0) for g in self.gaps))

    @property
    def expected_s(self) -> float | None:
        """The length the recording should have had; for a record of schema 0 without
        it, from the length read and its share of the nominal one."""
        expected = self.expected_duration_s
        if expected is None:
            duration, fraction = self.duration_s, self.read_fraction_of_nominal
            expected = duration / fraction if duration and fraction else None
        return float(expected) if expected and expected > 0 else None


@dataclass(frozen=True)
class LightingPeriodRecord(_Block):
    """A stretch of steady lighting (light gain relative to the background)."""

    start_s: float
    end_s: float
    first_frame: int | None = None
    gain_median: float | None = None
    gain_min: float | None = None
    gain_max: float | None = None

    @property
    def label(self) -> str:
        return "" if self.gain_median is None else f"gain {self.gain_median:.3g}"


@dataclass(frozen=True)
class LightingRecord(_Block):
    """Whether the light was followed, and its periods."""

    followed: bool = False
    abrupt_changes: int = 0
    periods: tuple[LightingPeriodRecord, ...] = ()

    @classmethod
    def from_dict(cls, data: Any) -> LightingRecord | None:
        if data is None:
            return None
        data = _mapping(data, "lighting")
        periods = tuple(
            _flat_block(LightingPeriodRecord, p, "lighting.periods")
            for p in _rows(data.get("periods"), "lighting.periods")
        )
        return _flat_block(cls, data, "lighting", periods=periods)


@dataclass(frozen=True)
class ArenaQC(_Block):
    """The quality figures of one arena and the verdict (see :mod:`cpp_tracker.analysis.qc`)."""

    frames: int = 0
    undetected_share: float = 0.0
    multi_blob_share: float = 0.0
    jumps: int = 0
    jumps_per_min: float = 0.0
    area_outlier_share: float = 0.0
    unobserved_s: float = 0.0
    flagged_seconds: int = 0
    unknown_share: float | None = None  # of the duration in no chamber (None: older records)
    typical_area_px: float | None = None
    max_speed_px_s: float | None = None
    px_per_cm_used: float | None = None
    scale_source: str | None = None
    needs_review: bool = False
    review_reasons: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Any) -> ArenaQC:
        data = _mapping(data, "qc")
        reasons = _texts(data.get("review_reasons"), "qc.review_reasons")
        return _flat_block(cls, data, "qc", review_reasons=reasons)


@dataclass(frozen=True)
class ArenaStats(_Block):
    """Frames of one arena and how many had no detection."""

    frames: int = 0
    frames_without_detection: int = 0
    share_without_detection: float | None = None


@dataclass(frozen=True)
class DetectionRecord(_Block):
    """The detector values decided for one arena of this video."""

    arena: str = ""
    crop: Sequence[int] | None = None
    polarity: str | None = None
    threshold: float | None = None
    min_area_px: float | None = None
    max_area_px: float | None = None
    noise_sigma: float | None = None
    mouse_area_px: float | None = None
    scale: int | None = None
    body_width_px: float | None = None
    opening_px: int | None = None
    blur_px: int | None = None
    #: detection.background_update as decided for this video, and what it did
    background_update: Mapping | None = None


@dataclass(frozen=True)
class ReaderRecord(_Block):
    """How the frames were read."""

    luma_direct: bool | None = None
    background_sampling: str | None = None
    decode_threads: int | None = None
    decoder: str | None = None  # video.reader: opencv or pyav (None: before the option)
    decoder_options: Mapping | None = None  # pyav's codec options (skip_loop_filter, ...)
    frames_not_decoded: int | None = None  # frames skipped by skip_frame=nonref (a stride)


@dataclass(frozen=True)
class ParallelRecord(_Block):
    """Time segments tracked in separate processes, or why the video was read in one pass."""

    workers: int = 1
    segments: tuple[Mapping, ...] = ()
    one_pass_reason: str | None = None
    requested: int | str | None = None  # --workers as given: a number or "auto"

    @classmethod
    def from_dict(cls, data: Any) -> ParallelRecord:
        data = _mapping(data, "parallel")
        return _flat_block(
            cls, data, "parallel", segments=_rows(data.get("segments"), "parallel.segments")
        )

    def frames_kept(self) -> list[int]:
        """Per segment, the frames an interrupted run had already tracked."""
        return [int(s.get("frames_from_interrupted_run", 0)) for s in self.segments]


@dataclass(frozen=True)
class TrackOrigin(_Block):
    """The run that made ``track.parquet`` (a reprocess keeps it)."""

    made_by: str | None = None
    finished: str | None = None
    config_hash: str | None = None
    frames: int | None = None


@dataclass(frozen=True)
class ReprocessNote(_Block):
    """What a reprocess changed."""

    changed_keys: tuple[str, ...] = ()
    previous_config_hash: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> ReprocessNote:
        data = _mapping(data, "reprocess")
        keys = _texts(data.get("changed_keys"), "reprocess.changed_keys")
        return _flat_block(cls, data, "reprocess", changed_keys=keys)


@dataclass(frozen=True)
class HistoryEntry(_Block):
    """One run that wrote the results of this folder."""

    command: str | None = None
    finished: str | None = None
    version: str | None = None
    config_hash: str | None = None
    config_source: str | None = None
    track: TrackOrigin | None = None
    config: Mapping | None = None

    @classmethod
    def from_dict(cls, data: Any) -> HistoryEntry:
        data = _mapping(data, "history")
        track = data.get("track")
        return _flat_block(
            cls,
            data,
            "history",
            track=None if track is None else _flat_block(TrackOrigin, track, "history.track"),
        )


# -------------------------------------------------------------------------------- record
@dataclass(frozen=True)
class RunRecord:
    """Everything ``run.json`` says about one result folder.

    ``videos`` holds every input file in session order (one for a plain video); the file
    also repeats the first as ``video``. ``metadata`` holds a manifest's columns;
    ``run_key`` what the results depend on (batch compares it to decide whether they are up
    to date); ``background`` the background model's provenance; ``warnings`` every warning,
    of which ``analysis_warnings`` are the ones a reprocess redoes.
    """

    tool: str = "cpp-tracker"
    version: str | None = None
    command: str | None = None
    started: str | None = None
    finished: str | None = None
    elapsed_s: float | None = None
    tracking_s: float | None = None
    videos: tuple[VideoSource, ...] = ()
    session: str | None = None
    window: Window = Window()
    trial: TrialStartRecord | None = field(default=None, metadata=_OPTIONAL)
    metadata: Mapping = field(default_factory=dict)
    config: ConfigRecord = ConfigRecord()
    run_key: Mapping | None = None
    resume: ResumeRecord = ResumeRecord()
    time_base: TimeBaseRecord = TimeBaseRecord()
    background: Mapping | None = None
    lighting: LightingRecord | None = None
    qc: Mapping[str, ArenaQC] = field(default_factory=dict)
    reader: ReaderRecord = ReaderRecord()
    parallel: ParallelRecord = ParallelRecord()
    detection: tuple[DetectionRecord, ...] = ()
    arenas: Mapping[str, ArenaStats] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    analysis_warnings: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    track: TrackOrigin | None = None
    reprocess: ReprocessNote | None = None
    history: tuple[HistoryEntry, ...] = ()
    #: the pose file a ``cpp-tracker pose`` result was made from (None: tracked from video)
    pose: Mapping | None = field(default=None, metadata=_OPTIONAL)
    # the schema of the file this record was read from (a rewrite uses SCHEMA_VERSION)
    schema_version: int = SCHEMA_VERSION

    # -- questions readers ask -------------------------------------------------------------
    @property
    def video(self) -> VideoSource:
        """The first (or only) input file."""
        return self.videos[0] if self.videos else VideoSource()

    @property
    def video_label(self) -> str | None:
        """The video path as recorded (None when the record names none)."""
        return self.video.path or None

    def arena_qc(self, arena: str) -> ArenaQC | None:
        return self.qc.get(arena)

    def arena_stats(self, arena: str) -> ArenaStats | None:
        return self.arenas.get(arena)

    def doubts(self, arena: str) -> tuple[str, ...]:
        """Why the numbers of ``arena`` are in doubt: the reasons its QC verdict gives
        (undetected frames, gaps, a truncated file, unknown time, ...); () when it passed.
        A record without a verdict (a version before QC) is doubted when its file was
        truncated."""
        qc = self.qc.get(arena)
        if qc is None:  # a version before QC: the share read is all there is to go on
            return self._truncation_doubt()
        if not qc.needs_review:
            return ()
        return qc.review_reasons or ("needs review",)

    def _truncation_doubt(self) -> tuple[str, ...]:
        read = self.time_base.read_fraction_of_nominal
        resolved = self.config.resolved or {}
        limit = (resolved.get("qc") or {}).get("min_read_fraction", 0.98)
        if read is None or read >= limit:
            return ()
        return (f"only {100 * read:.1f} % of the nominal length read (limit "
                f"{100 * limit:g} %; no QC verdict: made by an older version)",)

    def usable(self, arena: str) -> bool:
        """Whether the numbers of ``arena`` may go into an experiment's means unmarked."""
        return not self.doubts(arena)

    @property
    def needs_review(self) -> bool | None:
        """True when an arena's QC asks for review; None when the record has no verdict."""
        if not self.qc:
            return None
        return any(q.needs_review for q in self.qc.values())

    def detection_for(self, arena: str) -> DetectionRecord | None:
        return next((d for d in self.detection if d.arena == arena), None)

    def lighting_periods(self) -> list[tuple[float, float, str]]:
        """``(start_s, end_s, label)`` of each lighting period; [] when none are recorded."""
        if self.lighting is None:
            return []
        return [
            (float(p.start_s), float(p.end_s), p.label or f"period {i + 1}")
            for i, p in enumerate(self.lighting.periods)
            if p.end_s > p.start_s
        ]

    def source_time(self, time_s: float) -> tuple[str, float]:
        """The video file and the time in it of a result's ``time_s``.

        ``time_s`` counts from the window's ``start_s`` and runs on across the chunk files
        of a session; this maps it back to ``(path of the file, seconds into it)``.
        """
        t = float(time_s) + float(self.window.start_s or 0.0)
        chosen = self.video
        for v in self.videos:
            if v.time_offset_s is not None and v.time_offset_s <= t:
                chosen = v
        return chosen.path, t - float(chosen.time_offset_s or 0.0)

    def missing_outputs(self, result_dir: Path) -> list[str]:
        """The listed output files that are not in ``result_dir``."""
        return [o for o in self.outputs if not (Path(result_dir) / o).exists()]

    # -- new records from this one ---------------------------------------------------------
    def with_metadata(self, metadata: Mapping) -> RunRecord:
        return replace(self, metadata=dict(metadata))

    def with_figure(self, drawn: bool, warning: str | None = None) -> RunRecord:
        """This record after drawing ``qc.png``: listed before ``run.json`` when drawn, a
        warning when not."""
        outputs = [o for o in self.outputs if o != "qc.png"]
        if drawn:
            outputs.insert(max(0, len(outputs) - 1), "qc.png")
        warnings = self.warnings if warning is None else (*self.warnings, warning)
        return replace(self, outputs=tuple(outputs), warnings=warnings)

    def with_outputs(self, names: Sequence[str]) -> RunRecord:
        """This record with ``names`` listed among its outputs, before ``run.json``."""
        outputs = [o for o in self.outputs if o not in names]
        at = outputs.index(RUN_FILE) if RUN_FILE in outputs else len(outputs)
        return replace(self, outputs=tuple([*outputs[:at], *names, *outputs[at:]]))

    def with_history_after(self, previous: RunRecord | None) -> RunRecord:
        """This record with the history of ``previous`` (the results it replaces) and an
        entry for itself; the last entry describes the current results."""
        history: tuple[HistoryEntry, ...] = ()
        if previous is not None:
            history = previous.history or (previous.history_entry(),)
        return replace(self, history=(*history, self.history_entry()))

    def history_entry(self) -> HistoryEntry:
        return HistoryEntry(
            command=self.command,
            finished=self.finished,
            version=self.version,
            config_hash=self.config.hash,
            config_source=self.config.source,
            track=self.track,
            config=self.config.resolved,
        )

    def reprocessed(
        self,
        *,
        version: str,
        config: ConfigRecord,
        timing: TimingRecord,
        arenas: Mapping[str, ArenaStats],
        qc: Mapping[str, ArenaQC],
        lighting: LightingRecord | None,
        analysis_warnings: Sequence[str],
        written: Sequence[str],
        changed_keys: Sequence[str],
        started: str,
        finished: str,
        elapsed_s: float,
    ) -> RunRecord:
        """The record after ``reprocess`` redid the analysis from the stored track.

        Warnings about the recording (timestamps, truncation) stay; the analysis's are
        replaced. ``written``: the tables the analysis wrote (a bins table is listed after
        ``summary.csv``, a stale one dropped). ``qc.png`` is listed again only once drawn
        (:meth:`with_figure`). The track keeps its origin; the run key its inputs.
        """
        kept = [w for w in self.warnings if w not in self.analysis_warnings]
        warnings = [*analysis_warnings, *(w for w in kept if w not in analysis_warnings)]
        return replace(
            self,
            version=version,
            command="reprocess",
            started=started,
            finished=finished,
            elapsed_s=elapsed_s,
            config=config,
            time_base=self.time_base.with_timing(timing),
            arenas=dict(arenas),
            qc=dict(qc),
            lighting=lighting,
            warnings=tuple(warnings),
            analysis_warnings=tuple(analysis_warnings),
            outputs=tuple(_outputs_after_reprocess(self.outputs, written)),
            track=self.track
            or TrackOrigin(
                made_by=self.command,
                finished=self.finished,
                config_hash=self.config.hash or "unknown",
                frames=self.time_base.frames_tracked,
            ),
            reprocess=ReprocessNote(tuple(changed_keys), self.config.hash or "unknown"),
            run_key=(
                {**self.run_key, "config_hash": config.hash} if self.run_key is not None else None
            ),
            history=(),
        )

    # -- the file ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The record as ``run.json`` holds it."""
        data = _block_to_dict(self)
        del data["schema_version"]
        videos = data.pop("videos")
        ordered: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for key, value in data.items():
            if key == "session":
                ordered["video"] = videos[0] if videos else _block_to_dict(VideoSource())
                ordered["videos"] = videos
            if key in ("reprocess", "history") and value in (None, []):
                continue
            ordered[key] = value
        return ordered

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """The record of a ``run.json`` mapping (any schema up to :data:`SCHEMA_VERSION`).

        Raises ``TypeError``/``ValueError`` when the data do not have the record's shape
        (:func:`read_run_record` turns that into one sentence).
        """
        data = _mapping(data, "run.json")
        sources = data.get("videos") or ([data["video"]] if data.get("video") else [])
        track = data.get("track")
        reprocess = data.get("reprocess")
        lighting = LightingRecord.from_dict(data.get("lighting"))
        return _flat_block(
            cls,
            data,
            "run.json",
            schema_version=int(data.get("schema_version", 0)),
            videos=tuple(VideoSource.from_dict(v) for v in sources),
            window=Window.from_dict(data.get("window")),
            trial=None if data.get("trial") is None else TrialStartRecord.from_dict(
                data["trial"]),
            metadata=dict(_mapping(data.get("metadata"), "metadata")),
            config=ConfigRecord.from_dict(data.get("config")),
            resume=ResumeRecord.from_dict(data.get("resume")),
            time_base=TimeBaseRecord.from_dict(data.get("time_base")),
            lighting=lighting,
            qc={str(k): ArenaQC.from_dict(q) for k, q in _mapping(data.get("qc"), "qc").items()},
            reader=ReaderRecord.from_dict(data.get("reader")),
            parallel=ParallelRecord.from_dict(data.get("parallel")),
            detection=tuple(
                DetectionRecord.from_dict(d) for d in _rows(data.get("detection"), "detection")
            ),
            arenas={
                str(k): ArenaStats.from_dict(a)
                for k, a in _mapping(data.get("arenas"), "arenas").items()
            },
            warnings=_texts(data.get("warnings"), "warnings"),
            analysis_warnings=_texts(data.get("analysis_warnings"), "analysis_warnings"),
            outputs=_texts(data.get("outputs"), "outputs"),
            track=None if track is None else TrackOrigin.from_dict(track),
            reprocess=None if reprocess is None else ReprocessNote.from_dict(reprocess),
            history=tuple(HistoryEntry.from_dict(h) for h in _rows(data.get("history"), "history")),
        )


def _outputs_after_reprocess(outputs: Sequence[str], written: Sequence[str]) -> list[str]:
    kept = [o for o in outputs if o not in ("summary_bins.csv", "qc.png")]
    for name in written:
        if name not in kept:
            at = kept.index("summary.csv") + 1 if "summary.csv" in kept else len(kept)
            kept.insert(at, name)
    return kept


def read_run_record(result_dir: str | Path) -> RunRecord:
    """The record of a result folder.

    Raises :class:`~cpp_tracker.errors.OutputError` with one sentence when ``run.json`` is
    missing, unreadable, not a run record, or written by a newer cpp-tracker.
    """
    return read_record_file(Path(result_dir) / RUN_FILE)


def read_previous_record(path: str | Path) -> RunRecord | None:
    """The record in the file ``path`` when there is one that can be read, else None (the
    history of results being replaced is kept when it can be)."""
    if not Path(path).exists():
        return None
    try:
        return read_record_file(path)
    except OutputError:
        return None


def read_record_file(path: str | Path) -> RunRecord:
    """The record in the file ``path`` (see :func:`read_run_record`)."""
    data = read_json(path)
    if not isinstance(data, Mapping):
        raise OutputError(f"{path}: is not a cpp-tracker run record; run 'cpp-tracker track' again")
    schema = data.get("schema_version", 0)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 0:
        raise OutputError(
            f"{path}: its schema_version {schema!r} is not a whole number; the file was "
            "edited or damaged: run 'cpp-tracker track' again"
        )
    if schema > SCHEMA_VERSION:
        from .. import __version__

        raise OutputError(
            f"{path}: was written by cpp-tracker {data.get('version', '(unknown version)')} "
            f"(run record schema {schema}); this cpp-tracker {__version__} reads schema "
            f"{SCHEMA_VERSION} and older: upgrade cpp-tracker to read these results"
        )
    try:
        return RunRecord.from_dict(data)
    except (TypeError, ValueError, AttributeError) as e:
        raise OutputError(
            f"{path}: does not have the shape of a run record ({e}); run 'cpp-tracker track' again"
        ) from None


def write_run_record(result_dir: str | Path, record: RunRecord) -> Path:
    """Write ``record`` as ``result_dir/run.json`` (atomically)."""
    return write_json(Path(result_dir) / RUN_FILE, record.to_dict())
