from __future__ import annotations

import pytest

from traitforge.app import workflows
from traitforge.errors import OutputError
from traitforge.schemas import RewardConfig
from traitforge.workspace import Workspace
from traitforge.workspace.files import (
    EXPORT_FOLDER,
    REWARD_FOLDER,
    atomic_directory,
    atomic_write_text,
    check_output_folder,
)


def _write(kind, staging, text="data"):
    for marker in kind.markers:
        (staging / marker).write_text("{}", encoding="utf-8")
    (staging / "data.txt").write_text(text, encoding="utf-8")


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_atomic_directory_keeps_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "export"
    with atomic_directory(target, EXPORT_FOLDER) as staging:
        _write(EXPORT_FOLDER, staging, "first")
    with (
        pytest.raises(RuntimeError, match="killed"),
        atomic_directory(target, EXPORT_FOLDER) as staging,
    ):
        (staging / "data.txt").write_text("half", encoding="utf-8")
        raise RuntimeError("killed")
    assert (target / "data.txt").read_text(encoding="utf-8") == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_atomic_directory_replaces_and_clears_leftovers(tmp_path):
    target = tmp_path / "export"
    (tmp_path / ".export.traitforge-staging").mkdir()  # left by a run killed mid-write
    with atomic_directory(target, EXPORT_FOLDER) as staging:
        _write(EXPORT_FOLDER, staging, "second")
    assert sorted(p.name for p in target.iterdir()) == [
        "data.txt",
        "dataset_dict.json",
        "provenance.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_kill_between_the_two_renames_keeps_the_old_folder(tmp_path):
    """Killed after the old folder moved aside and before the new one moved in: the next run
    puts the old one back first, and replaces it only once it has a new one."""
    target = tmp_path / "models"
    with atomic_directory(target, REWARD_FOLDER) as staging:
        _write(REWARD_FOLDER, staging, "old")
    target.rename(tmp_path / ".models.traitforge-old")
    with (
        pytest.raises(RuntimeError, match="killed"),
        atomic_directory(target, REWARD_FOLDER) as staging,
    ):
        raise RuntimeError("killed")
    assert (target / "data.txt").read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


@pytest.mark.parametrize("out", [".", "project"])
def test_a_folder_holding_other_files_is_refused_and_nothing_is_deleted(tmp_path, monkeypatch, out):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n", encoding="utf-8")
    (project / "notes.txt").write_text("keep me\n", encoding="utf-8")
    monkeypatch.chdir(project if out == "." else tmp_path)
    before = _tree(tmp_path)
    for overwrite in (False, True):
        with (
            pytest.raises(
                OutputError,
                match=r"holds files traitforge did not write \(no dataset_dict\.json \+ "
                r"provenance\.json\).*Pass another --out, e\.g\. .*project/export; --overwrite "
                "never replaces",
            ),
            atomic_directory(project, EXPORT_FOLDER, overwrite=overwrite) as staging,
        ):
            _write(EXPORT_FOLDER, staging)
    assert _tree(tmp_path) == before  # nothing deleted, no staging folder created


def test_an_empty_folder_and_its_own_kind_are_replaced(tmp_path):
    target = tmp_path / "models"
    target.mkdir()
    for text in ("first", "second"):
        with atomic_directory(target, REWARD_FOLDER) as staging:
            _write(REWARD_FOLDER, staging, text)
    assert (target / "data.txt").read_text(encoding="utf-8") == "second"


def test_the_other_kind_is_replaced_only_with_overwrite(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target, EXPORT_FOLDER) as staging:
        _write(EXPORT_FOLDER, staging, "pairs")
    with pytest.raises(
        OutputError,
        match=r"holds a dataset export \(written by `traitforge export`\), not a reward-model "
        r"output\. Pass another --out, or --overwrite to replace it",
    ):
        check_output_folder(target, REWARD_FOLDER)
    assert (target / "data.txt").read_text(encoding="utf-8") == "pairs"
    with atomic_directory(target, REWARD_FOLDER, overwrite=True) as staging:
        _write(REWARD_FOLDER, staging, "models")
    assert sorted(p.name for p in target.iterdir()) == ["data.txt", "traitforge-reward.json"]


def test_an_existing_file_is_an_error_not_renamed_aside(tmp_path):
    target = tmp_path / "pairs.jsonl"
    target.write_text("{}\n", encoding="utf-8")
    with (
        pytest.raises(OutputError, match=r"pairs\.jsonl is a file; .*Pass a new or empty"),
        atomic_directory(target, EXPORT_FOLDER, overwrite=True) as staging,
    ):
        _write(EXPORT_FOLDER, staging)
    with pytest.raises(OutputError, match=r"pairs\.jsonl is a file, not a folder"):
        check_output_folder(target / "sub", EXPORT_FOLDER)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl"]
    assert target.read_text(encoding="utf-8") == "{}\n"


def test_a_workspace_and_its_own_files_are_refused(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    with workspace.store():
        pass
    (workspace.classifiers_dir).mkdir()
    before = _tree(tmp_path)
    with pytest.raises(OutputError, match=r"ws is a traitforge workspace; writing there"):
        check_output_folder(workspace.root, EXPORT_FOLDER, overwrite=True, home=workspace.root)
    for inside in (
        workspace.classifiers_dir,
        workspace.root / "rounds" / "1" / "model",
        workspace.root / "new",
        workspace.exports_dir,  # holds the exports, it is not one
    ):
        with pytest.raises(
            OutputError,
            match=r"is inside the workspace .*ws, among the files traitforge keeps there\. "
            r"Pass an --out folder outside the workspace, or one inside .*ws/exports$",
        ):
            check_output_folder(inside, EXPORT_FOLDER, home=workspace.exports_dir)
    with pytest.raises(OutputError, match=r"outside the workspace$"):
        check_output_folder(workspace.exports_dir / "latest", REWARD_FOLDER, overwrite=True)
    assert _tree(tmp_path) == before
    model = workspace.root / "rounds" / "1" / "model"  # where the loop trains
    assert check_output_folder(model, REWARD_FOLDER, home=workspace.root / "rounds") == model
    latest = workspace.exports_dir / "latest"
    with atomic_directory(latest, EXPORT_FOLDER, home=workspace.exports_dir) as staging:
        _write(EXPORT_FOLDER, staging)
    assert (latest / "provenance.json").is_file()


def test_a_traitforge_folder_holding_a_workspace_is_not_replaced(tmp_path):
    target = tmp_path / "export"
    with atomic_directory(target, EXPORT_FOLDER) as staging:
        _write(EXPORT_FOLDER, staging)
    with Workspace.open(target / "ws").store():
        pass
    with pytest.raises(OutputError, match=r"also a traitforge store \(.*ws/store\.sqlite\)"):
        check_output_folder(target, EXPORT_FOLDER)
    assert (target / "ws" / "store.sqlite").is_file()


def test_a_folder_written_without_its_marker_is_not_swapped_in(tmp_path):
    target = tmp_path / "models"
    with (
        pytest.raises(RuntimeError, match=r"without its marker\(s\) \['traitforge-reward\.json'\]"),
        atomic_directory(target, REWARD_FOLDER) as staging,
    ):
        (staging / "data.txt").write_text("no manifest", encoding="utf-8")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["train", "eval --matrix"])
def test_reward_training_refuses_a_folder_of_other_files_before_training(tmp_path, command):
    """Checked before the data is even read: no hour of training ends in a refusal."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n", encoding="utf-8")
    missing = tmp_path / "no-such-export"
    with pytest.raises(OutputError, match=r"mine holds files traitforge did not write \(no "):
        if command == "train":
            workflows.train_reward(missing, mine, RewardConfig(), overwrite=True)
        else:
            workflows.reward_matrix(missing, RewardConfig(), data=missing, out=mine)
    assert _tree(tmp_path) == ["mine", "mine/notes.txt"]


def test_atomic_write_text_sets_the_mode(tmp_path):
    path = tmp_path / "secret.txt"
    atomic_write_text(path, "key", mode=0o600)
    assert path.read_text(encoding="utf-8") == "key"
    assert path.stat().st_mode & 0o777 == 0o600
