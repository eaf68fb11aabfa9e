"""config.yaml_file: a config file's mapping, before validation, with plain errors."""

from __future__ import annotations

import pytest

from cpp_tracker.config.yaml_file import read_config_mapping
from cpp_tracker.errors import ConfigError


def test_reads_the_mapping_as_written_even_when_invalid(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("arenas:\n  - name: a\n    polygon: [[0, 0], [1, 0]]\ndetection: {bogus: 1}\n")
    assert read_config_mapping(path, otherwise="x") == {
        "arenas": [{"name": "a", "polygon": [[0, 0], [1, 0]]}], "detection": {"bogus": 1}}


@pytest.mark.parametrize(("text", "message"), [
    (None, "file not found; check the path given to --config"),
    ("arenas: [1, 2\n", "cannot be read as YAML ("),
    (b"\xff\xfe", "cannot be read as YAML ('utf-8' codec can't decode"),
    ("- a\n- b\n", "is not a YAML mapping with an 'arenas' list; draw without --config"),
    ("", "is not a YAML mapping with an 'arenas' list; draw without --config"),
])
def test_errors_name_the_file_and_the_way_out(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as e:
        read_config_mapping(path, otherwise="draw without --config")
    assert e.value.source == str(path) and e.value.exit_code == 2
    assert message in str(e.value)
    if "cannot be read" in message:
        assert str(e.value).endswith("; fix it or draw without --config")
