from __future__ import annotations

import re

import pytest

from traitforge.curation import embeddings, pipeline
from traitforge.curation.gaps import gold_gap, trait_gaps, unscored_note
from traitforge.curation.pipeline import (
    CurationState,
    DedupStage,
    FlagStage,
    check_stages,
    gold_examples,
)
from traitforge.curation.selection import GoldChecks, PairSelector
from traitforge.curation.sources import Parsed, source_format
from traitforge.errors import ConfigError, TraitforgeError, WorkspaceError
from traitforge.schemas import Candidate, ComparisonTask, DuplicateMark, Flag, TraitSpec


def test_stage_order_is_checked_before_any_work(config):
    with pytest.raises(ConfigError, match=r"stage 'flag' needs \['token_counts'\].*move a stage"):
        check_stages([FlagStage(config), DedupStage(config)])


def test_eligible_leaves_out_flagged_and_same_prompt_duplicates():
    a, b, c, d = (
        Candidate(prompt="Can pigs fly?", response=r, source="t")
        for r in ("No", "No, they cannot", "Pigs can't fly", "Oui")
    )
    state = CurationState(
        candidates=[a, b, c, d],
        flags=[Flag(candidate_id=d.id, reason="language", detail="looks French")],
        duplicates=[
            DuplicateMark(
                candidate_id=b.id, representative_id=a.id, similarity=0.97, scope="prompt"
            ),
            DuplicateMark(
                candidate_id=c.id, representative_id="elsewhere", similarity=0.99, scope="corpus"
            ),
        ],
    )
    assert [x.id for x in state.eligible()] == [a.id, c.id]


def test_gold_examples_follow_polarity_and_scale():
    honest = TraitSpec(name="honesty", description="d", guidelines="g")
    sycophancy = TraitSpec(name="sycophancy", description="d", guidelines="g", polarity="negative")
    rated = [
        Candidate(prompt="Q?", response=str(v), source="t", gold={"honesty": v, "sycophancy": v})
        for v in (1.0, 2.0, 4.0, 5.0)
    ]
    examples = gold_examples(rated, [honest, sycophancy])
    assert [e.label for e in examples["honesty"]] == [0, 0, 1, 1]  # split at the scale middle
    assert [e.label for e in examples["sycophancy"]] == [1, 1, 0, 0]  # less is preferred
    binary = [
        Candidate(prompt="Q?", response=str(v), source="t", gold={"honesty": v}) for v in (0.0, 1.0)
    ]
    assert [e.label for e in gold_examples(binary, [honest])["honesty"]] == [0, 1]


@pytest.fixture
def no_model(monkeypatch):
    """Loading the embedding model fails the test: these refusals come before it."""

    def load(*args, **kwargs):
        raise AssertionError("the embedding model was loaded")

    monkeypatch.setattr(embeddings, "load_sentence_transformer", load)


def _curate(store, config, tmp_path):
    return pipeline.curate(store, config, tmp_path / "classifiers", tmp_path / "e.sqlite", 5)


def _train(store, config, tmp_path):
    return pipeline.train_classifiers(
        store, config, tmp_path / "classifiers", tmp_path / "e.sqlite"
    )


@pytest.mark.parametrize("run", [_curate, _train], ids=["curate", "classifiers-train"])
def test_an_empty_workspace_is_refused_before_the_model_loads(
    store, config, tmp_path, run, no_model
):
    with pytest.raises(
        WorkspaceError,
        match=rf"nothing to curate: {re.escape(str(store.path.parent))} holds no candidates; "
        r"run `traitforge ingest` first",
    ):
        run(store, config, tmp_path)


def test_training_on_gold_without_any_labels_names_the_traits_and_the_fix(
    store, config, tmp_path, no_model
):
    with store.transaction():
        store.add_candidates(
            Candidate(prompt="Can pigs fly?", response=r, source="mine")
            for r in ("No, pigs cannot fly.", "Yes, in winter.")
        )
    with pytest.raises(
        TraitforgeError,
        match=r"no classifier to train: .* has gold labels for honesty, corrigibility, "
        r"harmlessness; ingest data with gold labels .* --origin judgements",
    ):
        _train(store, config, tmp_path)


@pytest.mark.slow  # embeds ~300 real TruthfulQA answers
def test_a_trait_without_gold_labels_is_named_in_a_warning(store, config, tmp_path, data_dir):
    rows = source_format("truthfulqa").reader(data_dir / "truthfulqa" / "TruthfulQA.csv", config)
    candidates = [c for o in rows if isinstance(o, Parsed) for c in o.candidates][:300]
    with store.transaction():
        store.add_candidates(candidates)
    training = _train(store, config, tmp_path)
    assert {r.trait for r in training.trained} == {"honesty"}  # by each classifier scorer
    [warning] = training.warnings
    assert re.search(
        r"has gold labels for corrigibility, harmlessness, so no classifier was trained for "
        r"them; ingest data with gold labels",
        warning,
    ), warning


# -- what a round could not do ----------------------------------------------------------------


def _prompts(traits_per_prompt, answers=("Yes.", "No.")):
    """Two candidates per prompt; prompt i states traits_per_prompt[i]."""
    return [
        Candidate(prompt=f"Question {i}?", response=a, source="t", traits=list(traits))
        for i, traits in enumerate(traits_per_prompt)
        for a in answers
    ]


def _task_for(candidates, trait, rated=(), round_=0):
    return ComparisonTask(
        prompt_id=candidates[0].prompt_id,
        candidate_ids=[c.id for c in candidates],
        trait=trait,
        rated_traits=list(rated),
        reason="random",
        round=round_,
    )


def _gaps(config, candidates, tasks, round_=0):
    return {
        g.trait: (g.kind, g.message)
        for g in trait_gaps(config, PairSelector(config).prompt_traits, candidates, tasks, round_)
    }


def test_a_trait_no_row_names_is_reported_with_what_to_do(config):
    candidates = _prompts([["harmlessness"], ["harmlessness"]])
    tasks = [_task_for(candidates[:2], "harmlessness")]
    gaps = _gaps(config, candidates, tasks)
    assert set(gaps) == {"honesty", "corrigibility"}
    kind, message = gaps["honesty"]
    assert kind == "no-candidates"
    assert message == (
        "honesty: no candidates are for this trait (no eligible row names it in its trait "
        "column, and none that names no trait has a gold label for it); add rows with trait: "
        "honesty (the column ingest.mapping.trait names), or remove it from traits"
    )


def test_a_trait_only_rated_because_a_heavier_one_is_asked_first_says_so(config):
    candidates = _prompts([[], []])  # nothing stated: every prompt is for every trait
    tasks = [_task_for(candidates[:2], "honesty", ("corrigibility", "harmlessness"))]
    gaps = _gaps(config, candidates, tasks)
    assert set(gaps) == {"corrigibility", "harmlessness"}
    kind, message = gaps["harmlessness"]
    assert kind == "no-tasks"
    assert message == (
        "harmlessness: no task in round 0 asks about it (rated in 1 task): each of its 2 "
        "prompts is also for honesty, which is asked first; name each row's trait "
        "(ingest.mapping.trait) so a prompt is asked only about its own, or raise "
        "curation.trait_weights.harmlessness above the others"
    )


def test_a_trait_whose_prompts_lost_the_budget_to_others_says_so(config):
    candidates = _prompts([["honesty"], ["honesty"], ["harmlessness"]])
    tasks = [_task_for(candidates[:2], "honesty"), _task_for(candidates[2:4], "honesty")]
    _, message = _gaps(config, candidates, tasks)["harmlessness"]
    assert message == (
        "harmlessness: no task in round 0, though 1 prompt for it is open: the round's 2 tasks "
        "went to other traits (honesty 2); raise --budget, or name each row's trait "
        "(ingest.mapping.trait) so prompts are asked only about theirs"
    )


def test_a_trait_whose_prompts_are_all_asked_says_why(config):
    candidates = _prompts([["honesty"], ["harmlessness"]])
    # harmlessness was asked in round 0; round 1 has nothing open for it
    tasks = [
        _task_for(candidates[2:], "harmlessness", round_=0),
        _task_for(candidates[:2], "honesty", round_=1),
    ]
    gaps = _gaps(config, candidates, tasks, round_=1)
    _, message = gaps["harmlessness"]
    assert message.startswith(
        "harmlessness: no task in round 1, as its prompts are closed: no open prompt left: of "
        "the 1 prompt with eligible candidates, 1 has curation.selection.tasks_per_prompt (1) "
        "tasks already"
    )
    assert "honesty" not in gaps


def test_a_trait_weighted_0_that_rows_name_is_said_to_get_no_question(config):
    curation = config.curation.model_copy(update={"trait_weights": {"harmlessness": 0.0}})
    off = config.model_copy(update={"curation": curation})
    candidates = _prompts([["honesty"], ["harmlessness"]])
    gaps = _gaps(off, candidates, [_task_for(candidates[:2], "honesty")])
    assert gaps["harmlessness"] == (
        "no-tasks",
        "harmlessness: curation.trait_weights gives it 0, so it is never asked, and the 1 "
        "prompt whose rows name it gets no question on it; give it a weight above 0 to ask it",
    )
    assert "corrigibility" in gaps and "honesty" not in gaps


def test_every_trait_asked_is_no_gap(config):
    candidates = _prompts([["honesty"], ["corrigibility"], ["harmlessness"]])
    tasks = [
        _task_for(candidates[2 * i : 2 * i + 2], trait)
        for i, trait in enumerate(("honesty", "corrigibility", "harmlessness"))
    ]
    assert _gaps(config, candidates, tasks) == {}


def test_gold_checks_short_of_the_fraction_say_the_numbers():
    assert gold_gap(GoldChecks(budget=30, wanted=3, available=3, made=3), 0.1) is None
    assert gold_gap(None, 0.1) is None
    assert gold_gap(GoldChecks(budget=30, wanted=3, available=1, made=1), 0.1) == (
        "gold checks: 1 of the 3 wanted (curation.selection.gold_fraction 0.1 of 30 tasks): "
        "only 1 open prompt has candidates whose gold labels differ on the trait asked, so "
        "annotators' gold accuracy rests on 1 check; ingest gold-labelled data for these "
        "traits, or lower curation.selection.gold_fraction (0 for none)"
    )
    none = gold_gap(GoldChecks(budget=30, wanted=3, available=0, made=0), 0.1)
    assert none is not None and "30 tasks): no open prompt has candidates whose" in none


def test_nothing_scored_says_how_the_tasks_were_chosen_and_how_to_rank_them():
    note = unscored_note(12, ["embedding-logreg.v1", "linguistic.v1"], "random")
    assert note.startswith(
        "nothing was scored: the scorers in curation.scorers (embedding-logreg.v1, "
        "linguistic.v1) gave no calibrated score to any candidate open for selection, so the "
        "12 new tasks were picked at random."
    )
    assert "`traitforge classifiers train`" in note
    assert "1 new task was chosen for diversity alone." in unscored_note(1, [], "diversity")


@pytest.mark.slow  # the real embedding model
def test_curate_with_nothing_scored_and_no_gold_says_what_it_could_not_do(
    store, config, tmp_path, capsys
):
    from traitforge.cli.render import print_curation

    questions = [f"Is it true that the number {n} is prime?" for n in range(12)]
    with store.transaction():
        store.add_candidates(
            Candidate(prompt=q, response=r, source="mine", traits=["harmlessness"])
            for q in questions
            for r in ("Yes, it is prime.", "I would rather not say anything about numbers.")
        )
    report = pipeline.curate(store, config, tmp_path / "classifiers", tmp_path / "e.sqlite", 10)

    assert report.scored == {}
    # the default strategy (decisive.v1) has nothing to rank by: it draws, and says so
    assert report.new_tasks == {"random": 10} and report.unscored_tasks == 10
    assert report.unscored_by == "random"
    assert {t.trait for t in store.tasks()} == {"harmlessness"}
    assert report.gold_checks == GoldChecks(budget=10, wanted=1, available=0, made=0)
    assert [(g.trait, g.kind) for g in report.trait_gaps] == [
        ("honesty", "no-candidates"),
        ("corrigibility", "no-candidates"),
    ]
    assert [w.split(":")[0] for w in report.warnings] == [
        "nothing was scored",
        "gold checks",
        "honesty",
        "corrigibility",
    ]
    print_curation(report)
    out = " ".join(capsys.readouterr().out.split())
    assert "random: 10 (no scores yet: 10 picked at random)" in out
    assert "uncertainty" not in out
    assert "warning: honesty: no candidates are for this trait" in out
    assert "warning: gold checks: 0 of the 1 wanted" in out


@pytest.mark.slow  # embeds 60 real TruthfulQA answers
def test_a_trait_with_too_few_labels_is_passed_over_and_said(store, config, tmp_path, data_dir):
    rows = source_format("truthfulqa").reader(data_dir / "truthfulqa" / "TruthfulQA.csv", config)
    candidates = [c for o in rows if isinstance(o, Parsed) for c in o.candidates][:60]
    few = {c.id for c in candidates[:4]}
    with store.transaction():
        store.add_candidates(
            c.model_copy(update={"gold": {**c.gold, "harmlessness": c.gold["honesty"]}})
            if c.id in few
            else c
            for c in candidates
        )
    positives = sum(c.gold["honesty"] for c in candidates[:4])
    training = _train(store, config, tmp_path)
    assert {r.trait for r in training.trained} == {"honesty"}
    assert training.warnings[-1] == (
        f"harmlessness has {positives:g} positive and {4 - positives:g} negative examples (at "
        "least 10 of each are needed), so no classifier was trained for it; annotate more "
        "tasks on harmlessness and pull them, or ingest gold labels for it"
    )
    assert "corrigibility, so no classifier was trained" in training.warnings[0]


@pytest.mark.slow  # the real embedding model
def test_training_with_too_few_labels_for_every_trait_says_so(store, config, tmp_path):
    with store.transaction():
        store.add_candidates(
            Candidate(prompt=q, response=r, source="mine", gold={"honesty": v})
            for q in ("Can pigs fly?", "Is the Moon made of cheese?")
            for r, v in (("No, they cannot.", 1.0), ("Yes, on Tuesdays.", 0.0))
        )
    with pytest.raises(
        TraitforgeError,
        match=r"^no classifier to train: honesty has 2 positive and 2 negative examples \(at "
        r"least 10 of each are needed\)",
    ):
        _train(store, config, tmp_path)
