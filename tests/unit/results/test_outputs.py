"""Atomic writes: a failed write leaves the old file whole and no temporary behind."""

import os
import stat

import pandas as pd
import pytest

from cpp_tracker.results.outputs import atomic_path, read_json, write_csv, write_json


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "summary.csv"
    write_csv(target, pd.DataFrame({"a": [1, 2]}))
    before = target.read_bytes()

    def crash(tmp):
        with open(tmp, "w") as f:
            f.write("half a fi")
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        atomic_path(target, crash)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_files_are_readable_by_the_group_under_a_normal_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "run.json", {"x": 1})
    finally:
        os.umask(old)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o644
    assert read_json(path) == {"x": 1}


def test_a_file_where_a_folder_should_be_is_named_in_one_sentence(tmp_path):
    """summarize, preview and report write through atomic_path: '--out FILE/x.csv' says
    which file is in the way instead of failing with a traceback."""
    from cpp_tracker.errors import OutputError
    from cpp_tracker.results.outputs import make_output_folder, write_bytes

    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("x")
    with pytest.raises(OutputError) as e:
        write_bytes(in_the_way / "sub" / "table.csv", b"a,b\n")
    assert str(e.value) == f"{in_the_way}: is a file, not a folder; give a folder for 'table.csv'"
    with pytest.raises(OutputError, match="give a folder for the results$"):
        make_output_folder(in_the_way, "the results")
    assert make_output_folder(tmp_path / "a" / "b", "the results").is_dir()
