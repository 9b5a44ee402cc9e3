"""Atomic files: the old or the new version, never a torn one, with the umask's permissions."""

import os

import pytest

from neuralrg.jobs.runs import atomic_path, atomic_write_bytes, read_json_object


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_a_new_file_gets_the_permissions_the_umask_allows(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "shared.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == mode


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["summary.json"]


def test_a_file_is_replaced_only_when_asked(tmp_path):
    path = tmp_path / "samples.h5"
    path.write_text("earlier samples")
    with pytest.raises(ValueError, match="exists; it is kept"), \
            atomic_path(path, replace=False) as temporary:
        temporary.write_text("new samples")
    assert path.read_text() == "earlier samples" and os.listdir(tmp_path) == ["samples.h5"]


BAD_JSON = {
    "list": ("[1, 2]", "holds a list, not an object"),
    "null": ("null", "holds null, not an object"),
    "garbled": ('{"flow": {', "is not valid JSON (line 1, column 11"),
    "empty": ("", "is not valid JSON (line 1, column 1"),
    "binary": (b"\xff\xfe\x00garbage", "is not text (byte 0 is not UTF-8)"),
}


@pytest.mark.parametrize("content,message", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_a_damaged_json_file_is_named_with_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match="config.json") as error:
        read_json_object(path)
    assert message in str(error.value) and "\n" not in str(error.value)
