"""Typed results keep the JSON they replaced: the keys of eval.json, matrix.json, round.json,
provenance.json and `traitforge eval --json` are pinned here, and files written before the
results were typed still load.

data/round-before-typed-results.json was written by the code before this change (a round
with an evaluation that skipped a pair, a matrix that names its report, and agreement).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers.report_data import agreement, knows_the_facts, longer_wins, reward_pairs
from traitforge.reward.evaluation import evaluate, generalization_matrix
from traitforge.reward.pairs import RewardPair
from traitforge.schemas import AgreementResult, EvaluationResult, LoopRound, MatrixResult

OLD_ROUND = Path(__file__).parent / "data" / "round-before-typed-results.json"

# Maps keyed by a name (trait, model, perturbation, reason, annotator): "*" in the key paths.
NAMED = {"per_trait", "shortcuts.format", "skipped", "cells", "cells.*", "traits", "annotators"}
NAMED |= {"style_hard.per_variant", "style_hard.variant_pairs", "style_hard.per_trait"}

EVALUATION_KEYS = {
    "pairs",
    "skipped",
    "skipped.*",
    "accuracy",
    "accuracy_ci",
    "per_trait",
    "per_trait.*",
    "per_trait.*.pairs",
    "per_trait.*.accuracy",
    "per_trait.*.accuracy_ci",
    "per_trait.*.length_baseline",
    "shortcuts",
    "shortcuts.length_baseline_accuracy",
    "shortcuts.chosen_shorter_pairs",
    "shortcuts.accuracy_chosen_shorter",
    "shortcuts.accuracy_chosen_shorter_ci",
    "shortcuts.length_reward_spearman",
    "shortcuts.format",
    "shortcuts.format.*",
    "shortcuts.format.*.mean_shift",
    "shortcuts.format.*.mean_abs_shift",
    "shortcuts.format.*.flip_rate",
    "shortcuts.format.*.accuracy_after",
    "calibration",
    "calibration.ece",
    "calibration.brier",
    "calibration.log_loss",
    "calibration.mean_probability",
    "calibration.bins",
    "calibration.bins[].bin",
    "calibration.bins[].count",
    "calibration.bins[].predicted",
    "calibration.bins[].observed",
    "rewards",
    "rewards.mean",
    "rewards.std",
    "rewards.mean_margin",
    "confidence_level",
}
# added later: files written before it lack it, and read back to the same bytes
STYLE_HARD_KEYS = {
    "style_hard",
    "style_hard.pairs",
    "style_hard.accuracy",
    "style_hard.accuracy_ci",
    "style_hard.per_variant",
    "style_hard.per_variant.*",
    "style_hard.variant_pairs",
    "style_hard.variant_pairs.*",
    "style_hard.per_trait",
    "style_hard.per_trait.*",
    "style_hard.ratio",
}
MATRIX_KEYS = {
    "models",
    "traits",
    "cells",
    "cells.*",
    "cells.*.*",
    "cells.*.*.pairs",
    "cells.*.*.accuracy",
    "cells.*.*.accuracy_ci",
    "skipped",
    "skipped.*",
}
AGREEMENT_KEYS = {
    "preference_alpha",
    "rating_alpha",
    "traits",
    "traits.*",
    "traits.*.preference_alpha",
    "traits.*.preference_units",
    "traits.*.rating_alpha",
    "traits.*.rating_units",
    "annotators",
    "annotators.*",
    "annotators.*.answers",
    "annotators.*.agreement",
    "annotators.*.compared",
    "annotators.*.gold_accuracy",
    "annotators.*.gold_tasks",
    "annotators.*.flagged",
    "annotators.*.reasons",
}


def key_paths(value: Any, path: str = "") -> set[str]:
    """Every key path of a JSON value; list items as `[]`, names in NAMED maps as `*`."""
    if isinstance(value, list):
        return set().union(
            *(key_paths(item, f"{path}[]") for item in value if isinstance(item, dict))
        )
    if not isinstance(value, dict):
        return set()
    paths = set()
    for key, item in value.items():
        name = "*" if path in NAMED else key
        child = f"{path}.{name}" if path else name
        paths |= {child} | key_paths(item, child)
    return paths


def pairs_with_a_skipped_one() -> list[RewardPair]:
    pairs = reward_pairs()
    return [*pairs, RewardPair(pairs[0].prompt, pairs[0].chosen, pairs[0].chosen, "honesty")]


def test_the_key_paths_helper_sees_every_level():
    assert key_paths({"per_trait": {"honesty": {"pairs": 1}}, "bins": [{"bin": 0}]}) == {
        "per_trait",
        "per_trait.*",
        "per_trait.*.pairs",
        "bins",
        "bins[].bin",
    }


def test_evaluation_json_keeps_its_keys_and_names_the_report_only_when_there_is_one():
    result = evaluate(knows_the_facts, pairs_with_a_skipped_one(), bootstrap_samples=50)

    written = result.model_dump(mode="json")  # eval.json and round.json
    assert key_paths(written) == EVALUATION_KEYS | STYLE_HARD_KEYS
    assert list(written) == [
        "pairs",
        "skipped",
        "accuracy",
        "accuracy_ci",
        "per_trait",
        "shortcuts",
        "calibration",
        "rewards",
        "confidence_level",
        "style_hard",
    ]
    reported = result.model_copy(update={"report": "m/eval-report.html"})
    printed = reported.model_dump(mode="json")  # `traitforge eval --json`
    assert key_paths(printed) == EVALUATION_KEYS | STYLE_HARD_KEYS | {"report"}
    assert list(printed)[-1] == "report" and printed["report"] == "m/eval-report.html"
    assert EvaluationResult.model_validate(printed) == reported


def test_matrix_json_keeps_its_keys():
    matrix = generalization_matrix(
        {"honesty": knows_the_facts, "harmlessness": longer_wins},
        pairs_with_a_skipped_one(),
        bootstrap_samples=50,
    )
    assert key_paths(matrix.model_dump(mode="json")) == MATRIX_KEYS  # matrix.json
    printed = matrix.model_copy(update={"report": "m/matrix-report.html"}).model_dump(mode="json")
    assert key_paths(printed) == MATRIX_KEYS | {"report"}  # `eval --matrix --json`, round.json
    assert list(printed) == ["models", "traits", "cells", "skipped", "report"]


def test_agreement_json_keeps_its_keys_rounded_and_sorted_by_name():
    result = agreement()
    data = result.model_dump(mode="json")  # provenance.json and round.json
    assert key_paths(data) == AGREEMENT_KEYS
    assert list(data["traits"]) == sorted(data["traits"])
    assert list(data["annotators"]) == sorted(data["annotators"])
    unrounded = result.model_copy(update={"preference_alpha": 1 / 3})
    assert unrounded.model_dump(mode="json")["preference_alpha"] == 0.3333
    assert unrounded.rounded().preference_alpha == 0.3333
    assert AgreementResult.model_validate(data) == result


def test_a_round_written_before_typed_results_loads_and_writes_its_results_unchanged():
    text = OLD_ROUND.read_text(encoding="utf-8")
    old = json.loads(text)
    record = LoopRound.model_validate_json(text)

    assert isinstance(record.evaluation, EvaluationResult)
    assert isinstance(record.matrix, MatrixResult)
    assert isinstance(record.agreement, AgreementResult)
    assert record.evaluation.skipped == {"chosen == rejected": 1}
    assert record.evaluation.per_trait["honesty"].pairs == 4
    assert record.matrix.report == "ws/rounds/2/model/matrix-report.html"
    assert record.agreement.flagged == {"sim-contrarian"}
    assert record.agreement.annotators["sim-contrarian"].reasons[0].startswith("agreement")
    again = json.loads(record.model_dump_json(indent=2))
    for part in ("evaluation", "matrix", "agreement"):
        assert again[part] == old[part]
        assert list(again[part]) == list(old[part])  # same order: files stay byte-identical
    assert key_paths(old["evaluation"]) == EVALUATION_KEYS
    assert key_paths(old["matrix"]) == MATRIX_KEYS | {"report"}
    assert key_paths(old["agreement"]) == AGREEMENT_KEYS


def test_an_old_eval_json_reads_back_to_the_same_bytes():
    # eval.json holds exactly what a round keeps as its evaluation, written with indent=2
    eval_json = json.dumps(json.loads(OLD_ROUND.read_text())["evaluation"], indent=2) + "\n"
    result = EvaluationResult.model_validate_json(eval_json)
    assert json.dumps(result.model_dump(mode="json"), indent=2) + "\n" == eval_json
    # files from before pairs were skipped had no `skipped` key
    older = json.loads(eval_json)
    del older["skipped"]
    assert EvaluationResult.model_validate(older).skipped == {}
