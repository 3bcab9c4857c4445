"""What the loop evaluates its reward model on (loop.evaluate_on): gold pairs of the held-out
prompts where a trait has gold, else the annotators' pairs of those prompts; and when there is
nothing, the round says why and what to do. The export and the held-out split are real; only
the trainer is replaced, by one that records what it was given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from traitforge.app import loop
from traitforge.app.held_out import GOLD, JUDGED, NOTHING_TO_EVALUATE, choose_held_out
from traitforge.exports.split import split_of
from traitforge.reward import runs
from traitforge.reward.evaluation import evaluate, versus_chance
from traitforge.reward.pairs import RewardPair, load_splits
from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    Judgement,
    LoopConfig,
    LoopRound,
    RankedCandidate,
)
from traitforge.workspace import Workspace

NOTHING = (
    "no gold labels and no annotated test prompts: raise export.test_fraction or annotate "
    "more prompts"
)


def _pair(trait: str, origin: str, n: int) -> RewardPair:
    return RewardPair(f"Question {n}?", "right", "wrong", trait=trait, origin=origin)


def _keep_judgements(pair: RewardPair) -> bool:
    return pair.origin == "judgements"


def test_auto_takes_gold_where_a_trait_has_it_and_annotators_pairs_where_it_has_none():
    gold = [_pair("honesty", "gold", i) for i in range(3)]
    split = [_pair("honesty", "judgements", 10), _pair("sycophancy", "judgements", 11)]
    split.append(_pair("sycophancy", "gold", 12))  # gold rows of the split are not judgements
    chosen = choose_held_out("auto", lambda: gold, split, _keep_judgements)
    assert chosen.parts == {GOLD: gold, JUDGED: [split[1]]}
    assert chosen.counts({"honesty", "sycophancy"}) == {GOLD: 3, JUDGED: 1}
    assert chosen.counts({"sycophancy"}) == {JUDGED: 1}
    assert chosen.note({"honesty", "sycophancy"}) is None


def test_auto_without_gold_is_the_annotated_test_prompts_and_gold_is_never_built():
    def no_gold_wanted():
        raise AssertionError("gold built")

    split = [_pair("sycophancy", "judgements", i) for i in range(4)]
    chosen = choose_held_out("judgements", no_gold_wanted, split, _keep_judgements)
    assert chosen.counts({"sycophancy"}) == {JUDGED: 4}
    assert choose_held_out("auto", list, split, _keep_judgements).counts(None) == {JUDGED: 4}


def test_with_nothing_to_evaluate_on_the_note_says_why_and_what_to_do():
    chosen = choose_held_out("auto", list, [], _keep_judgements)
    assert chosen.pairs == [] and chosen.counts({"sycophancy"}) == {}
    assert chosen.note({"sycophancy"}) == NOTHING
    assert chosen.note(None) == NOTHING
    # gold only, by choice: the note points at 'auto'
    split = [_pair("sycophancy", "judgements", 1)]
    strict = choose_held_out("gold", list, split, _keep_judgements)
    assert strict.counts({"sycophancy"}) == {}
    assert "set loop.evaluate_on to 'auto'" in strict.note({"sycophancy"})


def test_a_trained_trait_without_test_pairs_is_named():
    gold = [_pair("honesty", "gold", 1)]
    chosen = choose_held_out("auto", lambda: gold, [], _keep_judgements)
    assert chosen.note({"honesty", "sycophancy"}) == f"not evaluated on sycophancy: {NOTHING}"
    # pairs of a trait without a model are not counted as evaluating anything
    assert chosen.counts({"sycophancy"}) == {}
    assert chosen.note({"sycophancy"}) == NOTHING


def test_export_mode_is_the_test_split_as_training_filters_it():
    split = [_pair("honesty", "judgements", 1), _pair("honesty", "gold", 2)]
    chosen = choose_held_out("export", list, split, _keep_judgements)
    assert chosen.pairs == split[:1]
    assert set(NOTHING_TO_EVALUATE) == set(
        LoopConfig.model_fields["evaluate_on"].annotation.__args__
    )


def test_auto_is_the_default():
    assert LoopConfig().evaluate_on == "auto"


# -- the loop's train step, on a real export ----------------------------------------------

PROMPTS = [f"Is claim number {i} true?" for i in range(16)]


def _workspace(root: Path, gold: bool, test_fraction: float) -> Workspace:
    opened = Workspace.open(root)
    config = opened.config.model_copy(
        update={
            "export": opened.config.export.model_copy(update={"test_fraction": test_fraction}),
            "reward": opened.config.reward.model_copy(update={"min_pairs": 1}),
        }
    )
    workspace = Workspace(opened.root, config)
    with workspace.store() as store, store.transaction():
        for prompt in PROMPTS:
            right, wrong = (
                Candidate(
                    prompt=prompt,
                    response=text,
                    source="team",
                    gold={"honesty": value} if gold else {},
                )
                for text, value in (("No, it is false.", 1.0), ("Yes, certainly.", 0.0))
            )
            task = ComparisonTask(
                prompt_id=right.prompt_id,
                candidate_ids=[right.id, wrong.id],
                trait="honesty",
                reason="random",
            )
            store.add_candidates([right, wrong])
            store.add_tasks([task])
            store.put_judgements(
                Judgement(
                    task_id=task.id,
                    annotator_id=who,
                    ranking=[
                        RankedCandidate(candidate_id=right.id, rank=1),
                        RankedCandidate(candidate_id=wrong.id, rank=2),
                    ],
                )
                for who in ("ann-1", "ann-2")
            )
    return workspace


def _test_prompts(workspace: Workspace) -> list[str]:
    settings = workspace.config.export
    return [
        p
        for p in PROMPTS
        if split_of(
            Candidate(prompt=p, response="x", source="t").prompt_id,
            settings.seed,
            settings.test_fraction,
        )
        == "test"
    ]


def knows_the_answer(prompts, responses, traits):
    return np.array([1.0 if r.startswith("No") else 0.0 for r in responses])


@pytest.fixture
def trainer(monkeypatch):
    """The round's trainer, recording what it is given; it evaluates a reward that knows the
    answer on the test pairs, as the real one would evaluate its model."""
    given: dict = {}

    def train_run(data, out, config, log, keep=None, test=None, **kwargs):
        given.update(kwargs, test=test, keep=keep)
        pairs = [p for p in test or [] if p.trait == "honesty"]
        evaluation = evaluate(knows_the_answer, pairs, bootstrap_samples=50) if pairs else None
        why = None if pairs else kwargs["no_test"]
        return runs.TrainRun(out, [], evaluation, out / "report.html", why)

    monkeypatch.setattr(runs, "train_run", train_run)
    return given


def _train(workspace: Workspace) -> LoopRound:
    record = LoopRound(round=1)
    step = loop._Round(workspace, record, 1, None, lambda _: None, None, None)
    step.export()
    step.train()
    return record


def test_a_gold_free_round_is_evaluated_on_the_annotated_test_prompts(tmp_path, trainer):
    workspace = _workspace(tmp_path / "ws", gold=False, test_fraction=0.3)
    held_out = _test_prompts(workspace)
    assert 0 < len(held_out) < len(PROMPTS)  # the split the test relies on
    record = _train(workspace)

    assert record.evaluated_on == {JUDGED: len(held_out)}
    assert record.evaluation is not None and record.evaluation.pairs == len(held_out)
    assert record.evaluation_note is None
    assert sorted(p.prompt for p in trainer["test"]) == sorted(held_out)
    assert all(p.origin == "judgements" for p in trainer["test"])
    exported = load_splits(workspace.exports_dir / "latest")["test"]
    assert sorted(p.pair_id for p in trainer["test"]) == sorted(p.pair_id for p in exported)
    again = LoopRound.model_validate_json(record.model_dump_json())
    assert again.evaluated_on == record.evaluated_on


def test_with_gold_the_round_is_evaluated_on_gold_as_before(tmp_path, trainer):
    workspace = _workspace(tmp_path / "ws", gold=True, test_fraction=0.3)
    record = _train(workspace)
    assert record.evaluated_on == {GOLD: len(_test_prompts(workspace))}
    assert all(p.origin == "gold" for p in trainer["test"])


def test_a_round_with_no_test_prompts_says_why_and_what_to_do(tmp_path, trainer):
    workspace = _workspace(tmp_path / "ws", gold=False, test_fraction=0.0)
    record = _train(workspace)
    assert record.evaluation is None and record.evaluated_on == {}
    assert record.evaluation_note == NOTHING
    assert trainer["no_test"] == NOTHING  # the model card and the log say it too


def test_a_round_without_a_model_says_so(tmp_path, trainer):
    workspace = _workspace(tmp_path / "ws", gold=False, test_fraction=0.3)
    settings = workspace.config.reward.model_copy(update={"min_pairs": 1000})
    workspace = Workspace(workspace.root, workspace.config.model_copy(update={"reward": settings}))
    record = _train(workspace)
    assert trainer == {} and record.model is None
    assert "no trait with reward.min_pairs (1000)" in record.evaluation_note


def test_the_loop_command_says_what_each_round_was_evaluated_on_or_why_not(capsys):
    from traitforge.app.loop import LoopResult
    from traitforge.cli.render import print_loop

    few = [RewardPair(f"Q{i}?", "No, it is false.", "Yes.", trait="honesty") for i in range(4)]
    evaluation = evaluate(knows_the_answer, few, bootstrap_samples=50)
    rounds = [
        LoopRound(round=1, tasks=5, evaluation=evaluation, evaluated_on={JUDGED: 4}),
        LoopRound(round=2, tasks=5, model="m", evaluation_note=NOTHING),
    ]
    print_loop(LoopResult(rounds=rounds, dataset=Path("d"), model=None, report=Path("r")))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert (
        "Round 1: evaluated on held-out judgements (4 pairs); "
        "n=4: too few test pairs for a meaningful interval"
    ) in lines
    assert f"Round 2: no evaluation: {NOTHING}" in lines
    assert "[100.0%" not in out  # the interval of 4 pairs is not printed as if it meant much


def test_the_loop_ends_with_each_traits_model_beside_its_length_baseline_and_chance(
    capsys, monkeypatch
):
    from traitforge.app.loop import LoopResult
    from traitforge.cli._app import console
    from traitforge.cli.render import print_loop
    from traitforge.schemas.results import TrainingSummary

    def pairs(trait: str, n: int) -> list[RewardPair]:
        return [RewardPair(f"{trait} Q{i}?", "No.", "Yes, it is.", trait=trait) for i in range(n)]

    def coin(prompts, responses, traits):  # knows honesty, flips a coin elsewhere
        return np.array(
            [
                float(r == "No.") if t == "honesty" else float(int(p.split("Q")[1][:-1]) % 2)
                for p, r, t in zip(prompts, responses, traits, strict=True)
            ]
        )

    test = pairs("honesty", 40) + pairs("harm[red]lessness", 60)
    evaluation = evaluate(coin, test, bootstrap_samples=200)
    summary = TrainingSummary(pairs=31, epochs=20, steps=40, seconds=1.0)
    record = LoopRound(round=2, tasks=5, evaluation=evaluation, training={"honesty": summary})
    monkeypatch.setattr(console, "width", 160)  # one line per row
    print_loop(LoopResult(rounds=[record], dataset=Path("d"), model=None, report=Path("r")))
    out = capsys.readouterr().out
    assert "Reward model per trait, round 2 (held-out test pairs)" in out
    [honesty] = [line for line in out.splitlines() if "honesty" in line]
    assert "31 pairs" in honesty and "100.0%" in honesty and "above chance" in honesty
    [harm] = [line for line in out.splitlines() if "harm[red]lessness" in line]  # literally
    row = evaluation.per_trait["harm[red]lessness"]
    verdict = versus_chance(row.accuracy, row.accuracy_ci, row.pairs)
    assert verdict in harm and verdict != "above chance"


def test_versus_chance_needs_an_interval_that_leaves_out_half():
    assert versus_chance(0.7, [0.6, 0.8], 100) == "above chance"
    assert versus_chance(0.55, [0.45, 0.65], 100) == "at chance"
    assert versus_chance(0.3, [0.2, 0.4], 100) == "below chance"
    assert versus_chance(0.9, None, 100) == "too few pairs to tell"
    assert versus_chance(0.9, [0.6, 1.0], 10) == "too few pairs to tell"
