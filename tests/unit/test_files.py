from __future__ import annotations

import pytest

from traitforge.workspace.files import atomic_directory, atomic_write_text


def test_atomic_directory_keeps_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "export"
    with atomic_directory(target) as staging:
        (staging / "data.txt").write_text("first", encoding="utf-8")
    with pytest.raises(RuntimeError, match="killed"), atomic_directory(target) as staging:
        (staging / "data.txt").write_text("half", encoding="utf-8")
        raise RuntimeError("killed")
    assert (target / "data.txt").read_text(encoding="utf-8") == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_atomic_directory_replaces_and_clears_leftovers(tmp_path):
    target = tmp_path / "export"
    (tmp_path / ".export.staging").mkdir()  # left by a run killed mid-write
    with atomic_directory(target) as staging:
        (staging / "new.txt").write_text("second", encoding="utf-8")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_atomic_write_text_sets_the_mode(tmp_path):
    path = tmp_path / "secret.txt"
    atomic_write_text(path, "key", mode=0o600)
    assert path.read_text(encoding="utf-8") == "key"
    assert path.stat().st_mode & 0o777 == 0o600
