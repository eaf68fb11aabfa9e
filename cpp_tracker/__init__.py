"""cpp_tracker: time-in-chamber results from overhead videos of a mouse in a CPP box.

The public API, in pipeline order::

    from cpp_tracker import load_config, VideoReader, estimate_background, make_detector
    from cpp_tracker import assign_chambers, occupancy_per_second, summarize_arena
    from cpp_tracker import assign_by_body_fraction, keypoint_shares  # chambers.rule
    from cpp_tracker import find_lighting_periods, qc_per_second, video_qc
    from cpp_tracker import track_video, track_session, analyse_track
    from cpp_tracker import read_run_record, load_result          # a result folder, read back
    from cpp_tracker import config_changes, reprocess_result      # a new config, stored tracks
    from cpp_tracker import collect_results, load_design          # the experiment's table
"""

__version__ = "0.1.0"

# The names below are imported on first use (PEP 562), so that ``import cpp_tracker.video.reader``
# (the segment worker processes, the CLI before a run starts) does not load pandas, shapely
# and matplotlib: measured 84 MB instead of 132 MB of libraries in a segment process.
_EXPORTS = {
    "ConfigError": ".errors",
    "CppTrackerError": ".errors",
    "OutputError": ".errors",
    "VideoError": ".errors",
    "Config": ".config.settings",
    "load_config": ".config.settings",
    "parse_config": ".config.settings",
    "VideoInfo": ".video.reader",
    "VideoReader": ".video.reader",
    "probe_video": ".video.reader",
    "estimate_background": ".tracking.background",
    "median_background": ".tracking.background",
    "TRACK_COLUMNS": ".tracking.tracker",
    "make_detector": ".tracking.tracker",
    "assign_chambers": ".geometry.chambers",
    "assign_by_body_fraction": ".geometry.chambers",
    "keypoint_shares": ".geometry.chambers",
    "build_layout": ".geometry.chambers",
    "frame_durations": ".analysis.occupancy",
    "occupancy_per_second": ".analysis.occupancy",
    "summarize_arena": ".analysis.summary",
    "find_lighting_periods": ".analysis.lighting",
    "qc_per_second": ".analysis.qc",
    "video_qc": ".analysis.qc",
    "analyse_track": ".runs.pipeline",
    "track_session": ".runs.pipeline",
    "track_video": ".runs.pipeline",
    "RunRecord": ".results.record",
    "read_run_record": ".results.record",
    "load_result": ".results.stored",
    "config_changes": ".runs.reprocess",
    "reprocess_result": ".runs.reprocess",
    "collect_results": ".experiment.collect",
    "load_design": ".experiment.design",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cpp_tracker' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "__version__",
    "CppTrackerError",
    "ConfigError",
    "VideoError",
    "OutputError",
    "Config",
    "load_config",
    "parse_config",
    "VideoInfo",
    "VideoReader",
    "probe_video",
    "median_background",
    "estimate_background",
    "TRACK_COLUMNS",
    "make_detector",
    "assign_chambers",
    "assign_by_body_fraction",
    "keypoint_shares",
    "build_layout",
    "frame_durations",
    "occupancy_per_second",
    "summarize_arena",
    "find_lighting_periods",
    "qc_per_second",
    "video_qc",
    "analyse_track",
    "track_video",
    "RunRecord",
    "read_run_record",
    "load_result",
    "track_session",
    "config_changes",
    "reprocess_result",
    "collect_results",
    "load_design",
]
