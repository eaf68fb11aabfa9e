"""cpp_tracker: time-in-chamber results from overhead videos of a mouse in a CPP box.

The public API, in pipeline order::

    from cpp_tracker import load_config, VideoReader, estimate_background, make_detector
    from cpp_tracker import assign_chambers, occupancy_per_second, summarize_arena
    from cpp_tracker import find_lighting_periods, qc_per_second, video_qc
    from cpp_tracker import track_video, track_session, analyse_track
    from cpp_tracker import config_changes, reprocess_result      # a new config, stored tracks
    from cpp_tracker import collect_results, load_design          # the experiment's table
"""

__version__ = "0.1.0"

# The names below are imported on first use (PEP 562), so that ``import cpp_tracker.video``
# (the segment worker processes, the CLI before a run starts) does not load pandas, shapely
# and matplotlib: measured 84 MB instead of 132 MB of libraries in a segment process.
_EXPORTS = {
    "ConfigError": ".errors",
    "CppTrackerError": ".errors",
    "OutputError": ".errors",
    "VideoError": ".errors",
    "Config": ".config",
    "load_config": ".config",
    "parse_config": ".config",
    "VideoInfo": ".video",
    "VideoReader": ".video",
    "probe_video": ".video",
    "estimate_background": ".background",
    "median_background": ".background",
    "TRACK_COLUMNS": ".tracker",
    "make_detector": ".tracker",
    "assign_chambers": ".geometry",
    "build_layout": ".geometry",
    "frame_durations": ".occupancy",
    "occupancy_per_second": ".occupancy",
    "summarize_arena": ".summary",
    "find_lighting_periods": ".lighting",
    "qc_per_second": ".qc",
    "video_qc": ".qc",
    "analyse_track": ".pipeline",
    "track_session": ".pipeline",
    "track_video": ".pipeline",
    "config_changes": ".reprocess",
    "reprocess_result": ".reprocess",
    "collect_results": ".collect",
    "load_design": ".design",
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
    "build_layout",
    "frame_durations",
    "occupancy_per_second",
    "summarize_arena",
    "find_lighting_periods",
    "qc_per_second",
    "video_qc",
    "analyse_track",
    "track_video",
    "track_session",
    "config_changes",
    "reprocess_result",
    "collect_results",
    "load_design",
]
