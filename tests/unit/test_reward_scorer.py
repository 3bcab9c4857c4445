"""Where the workspace keeps its reward-model pointer: W/reward/, or W/classifiers/ before."""

from __future__ import annotations

import json

from traitforge.curation.scorers import get_scorer
from traitforge.reward.scorer import KEY, POINTER, RewardScorer, has_model, pointer_file


def _point(path, trait):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": "m", "fingerprint": "f", "traits": [trait]}))


def test_the_pointer_lives_in_the_reward_folder_and_an_earlier_one_still_reads(workspace):
    assert not has_model(workspace.reward_dir)
    assert get_scorer(KEY, workspace.classifiers_dir).trained_traits() == []

    _point(workspace.classifiers_dir / POINTER, "honesty")  # where earlier versions wrote it
    assert has_model(workspace.reward_dir)
    assert pointer_file(workspace.reward_dir) == workspace.classifiers_dir / POINTER
    # Curation hands every scorer the classifiers folder; this one finds its own beside it.
    assert get_scorer(KEY, workspace.classifiers_dir).trained_traits() == ["honesty"]

    _point(workspace.reward_dir / POINTER, "harmlessness")  # a model pointed to since
    assert pointer_file(workspace.reward_dir) == workspace.reward_dir / POINTER
    assert RewardScorer(workspace.reward_dir).trained_traits() == ["harmlessness"]
    assert get_scorer(KEY, workspace.classifiers_dir).trained_traits() == ["harmlessness"]
