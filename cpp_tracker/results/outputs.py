"""Write and read result files atomically.

Every file is written under a temporary name in its final folder, flushed to disk, then
renamed over the final name (``os.replace`` is atomic on one file system), so an interrupted
run never leaves a half-written result: a reader sees the old file or the new one.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:  # imported where used: the tracking processes need no pandas
    import pandas as pd

from ..errors import OutputError

__all__ = [
    "make_output_folder",
    "atomic_path",
    "write_bytes",
    "write_json",
    "read_json",
    "write_csv",
    "write_parquet",
    "read_track",
    "write_png",
    "TrackPartWriter",
    "part_name",
    "parts_are_complete",
    "read_parts",
    "write_track_from_parts",
]


def _file_mode() -> int:
    """The mode a newly created file gets under the current umask (mkstemp uses 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def make_output_folder(folder: str | Path, what: str) -> Path:
    """Make ``folder`` (and the folders above it) for ``what`` (e.g. "the results");
    :class:`OutputError` naming a file that stands where a folder should be, or why the
    folder cannot be made."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        in_the_way = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if in_the_way is not None and not in_the_way.is_dir():
            raise OutputError(
                f"{in_the_way}: is a file, not a folder; give a folder for {what}"
            ) from None
        raise OutputError(
            f"{folder}: cannot be made ({e.strerror or e}); give a folder for {what} that "
            "you can write to"
        ) from None
    return folder


def atomic_path(path: str | Path, write: Callable[[str], None], size: int | None = None) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path`` atomically.

    The file gets the usual permissions for the user's umask, so colleagues on a shared
    lab server can read results as they read any other file there.

    A full disk, a read-only file system or a folder or file of another user raise
    :class:`OutputError` naming the folder and what was needed; the temporary file is
    removed and the file of that name, if any, is left as it was. ``size``: the bytes to
    be written, when known (for the message).
    """
    path = Path(path)
    make_output_folder(path.parent, f"'{path.name}'")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        if _errno_of(e) not in _WRITE_ERRNOS:
            raise
        raise _write_problem(path, _errno_of(e), size or 0) from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException as e:
        written = size if size is not None else _size_or_zero(tmp)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        code = _errno_of(e)
        if code in _WRITE_ERRNOS:
            raise _write_problem(path, code, written) from None
        raise
    return path


#: The errors of a folder that cannot take a file: full, read-only, not ours.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _errno_of(e: BaseException) -> int | None:
    """The errno of an OSError; Arrow's file errors carry it only in their text."""
    if not isinstance(e, OSError):
        return None
    if e.errno is not None:
        return e.errno
    text = str(e)
    return next((code for code in _WRITE_ERRNOS if os.strerror(code) in text), None)


def _size_or_zero(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _megabytes(n: int) -> str:
    if n < 1e6:
        return f"{n / 1e3:.1f} kB"
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


def _owner(path: Path) -> str | None:
    """The user owning ``path`` when it is not this process's user."""
    try:
        uid = path.stat().st_uid
    except OSError:
        return None
    if uid == os.geteuid():
        return None
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def _write_problem(path: Path, code: int | None, written: int) -> OutputError:
    """One sentence: which folder could not take which file, and what it needs."""
    folder = path.parent
    if code in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = f"{_megabytes(shutil.disk_usage(folder).free)} free"
        except OSError:
            free = "free space unknown"
        full = "the disk quota is used up" if code == errno.EDQUOT else "the disk is full"
        needed = f" ({_megabytes(written)})" if written else ""
        return OutputError(
            f"{folder}: {full} ({free}) while writing {path.name}{needed}; free some space "
            "and rerun the same command: it continues from the last checkpoint"
        )
    if code == errno.EROFS:
        return OutputError(f"{folder}: is on a read-only file system, so {path.name} cannot be "
                           "written; give an output folder on a writable disk")
    owner = next(((p, o) for p in (path, folder) if (o := _owner(p)) is not None), None)
    whose = f" ({owner[0].name} belongs to {owner[1]})" if owner else ""
    return OutputError(f"{folder}: permission denied writing {path.name}{whose}; make it "
                       "writable for you, or give another output folder")


def write_bytes(path: str | Path, data: bytes) -> Path:
    def w(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_path(path, w, len(data))


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | Path, data: Any) -> Path:
    text = json.dumps(data, indent=2, default=_json_default, allow_nan=False)
    return write_bytes(path, (text + "\n").encode())


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise OutputError(f"{path}: not found") from None
    except (OSError, json.JSONDecodeError) as e:
        raise OutputError(f"{path}: cannot be read ({e}); delete it and run again") from None


def write_csv(path: str | Path, table: pd.DataFrame) -> Path:
    return atomic_path(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))


def write_parquet(path: str | Path, table: pd.DataFrame) -> Path:
    return atomic_path(path, lambda tmp: table.to_parquet(tmp, index=False))


def read_track(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_parquet(path, columns=columns)
    except FileNotFoundError:
        raise OutputError(f"{path}: track not found; run 'cpp-tracker track' first") from None
    except (OSError, pa.ArrowException) as e:
        raise OutputError(f"{path}: cannot be read ({e}); run 'cpp-tracker track' again") from None


def write_png(path: str | Path, image: np.ndarray) -> Path:
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OutputError(f"{path}: the image could not be encoded")
    return write_bytes(path, buf.tobytes())


def part_name(number: int) -> str:
    """File name of the ``number``-th part (from 1) of a track written in parts."""
    return f"part-{number:06d}.parquet"


def parts_are_complete(parts: list[Path]) -> bool:
    """Whether ``parts`` (sorted) are exactly the first ``len(parts)`` part files, none
    missing: a count alone would take a later part for a deleted earlier one."""
    return [p.name for p in parts] == [part_name(i) for i in range(1, len(parts) + 1)]


class TrackPartWriter:
    """Writes the per-frame track as numbered part files while tracking runs.

    Each part is a complete parquet file written atomically, so after a crash every part on
    disk is whole. :meth:`parts` lists them in order.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = len(self.parts())

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    def write(self, table: pa.Table) -> Path:
        """Write ``table`` (:func:`cpp_tracker.tracking.tracker.track_rows`) as the next part."""
        self.count += 1
        path = self.folder / part_name(self.count)
        return atomic_path(path, lambda tmp: pq.write_table(table, tmp))

    def read_all(self, columns: list[str] | None = None) -> pd.DataFrame:
        return read_parts(self.parts(), columns)


def read_parts(parts: list[Path], columns: list[str] | None = None) -> pd.DataFrame:
    """The part files, in order, as one table (only ``columns``, when given).

    String columns come back as categoricals: one copy of each arena name, not one per row.
    """
    import pandas as pd

    if not parts:
        return pd.DataFrame()
    tables = [pq.read_table(p, columns=columns) for p in parts]
    table = pa.concat_tables(tables)
    del tables
    return table.to_pandas(strings_to_categorical=True, self_destruct=True)


def write_track_from_parts(
    path: str | Path, parts: list[Path], add_columns: Callable[[pd.DataFrame, int], pd.DataFrame],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Join part files into one parquet file, row group by row group, atomically.

    ``add_columns(part_table, row_offset)`` returns the part with any computed columns;
    ``metadata`` is added to the file's key-value metadata.
    """

    import pandas as pd

    def w(tmp: str) -> None:
        writer = None
        offset = 0
        try:
            for p in parts:
                t = add_columns(pd.read_parquet(p), offset)
                offset += len(t)
                table = pa.Table.from_pandas(t, preserve_index=False)
                if metadata:
                    table = table.replace_schema_metadata(
                        {**(table.schema.metadata or {}), **metadata})
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

    return atomic_path(path, w)
