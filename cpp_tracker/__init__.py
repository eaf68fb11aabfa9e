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

from .errors import ConfigError, CppTrackerError, OutputError, VideoError  # noqa: E402
from .config import Config, load_config, parse_config  # noqa: E402
from .video import VideoInfo, VideoReader, probe_video  # noqa: E402
from .background import estimate_background, median_background  # noqa: E402
from .tracker import TRACK_COLUMNS, make_detector  # noqa: E402
from .geometry import assign_chambers, build_layout  # noqa: E402
from .occupancy import frame_durations, occupancy_per_second  # noqa: E402
from .summary import summarize_arena  # noqa: E402
from .lighting import find_lighting_periods  # noqa: E402
from .qc import qc_per_second, video_qc  # noqa: E402
from .pipeline import analyse_track, track_session, track_video  # noqa: E402
from .reprocess import config_changes, reprocess_result  # noqa: E402
from .collect import collect_results  # noqa: E402
from .design import load_design  # noqa: E402

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
