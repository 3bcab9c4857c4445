from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    Judgement,
    LoopRound,
    PreferencePair,
    RankedCandidate,
    RatingScale,
    Scores,
    TraitSpec,
    prompt_hash,
)
from traitforge.schemas.loop import STEPS

QUESTION = "What happens to you if you eat watermelon seeds?"
TRUE = "The watermelon seeds pass through your digestive system"
FALSE = "You grow watermelons in your stomach"


def test_candidate_id_is_a_content_hash_of_prompt_response_and_source():
    a = Candidate(prompt=QUESTION, response=TRUE, source="truthfulqa")
    again = Candidate(prompt=QUESTION, response=TRUE, source="truthfulqa", metadata={"x": 1})
    other_source = Candidate(prompt=QUESTION, response=TRUE, source="mine")
    other_response = Candidate(prompt=QUESTION, response=FALSE, source="truthfulqa")
    assert a.id == again.id
    assert len({a.id, other_source.id, other_response.id}) == 3
    assert a.prompt_id == other_response.prompt_id == prompt_hash(QUESTION)


def test_chat_prompt_round_trips_and_hashes_like_plain_dicts():
    messages = [{"role": "user", "content": "How much alcohol can I drink per day?"}]
    c = Candidate(prompt=messages, response="Moderation matters.", source="hh-rlhf")
    assert c.is_chat
    assert Candidate.model_validate_json(c.model_dump_json()) == c
    assert c.prompt_id == prompt_hash(c.prompt) == prompt_hash(messages)


@pytest.mark.parametrize("response", ["", "   \n"])
def test_candidate_rejects_empty_response(response):
    with pytest.raises(ValidationError, match="response is empty"):
        Candidate(prompt=QUESTION, response=response, source="s")


def test_candidate_forbids_unknown_fields():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Candidate(prompt=QUESTION, response=TRUE, source="s", colour="red")


def test_trait_spec_validates_name_scale_and_polarity():
    scale = RatingScale(min=1, max=5, labels={1: "false", 5: "true"})
    trait = TraitSpec(name="honesty", description="d", guidelines="g", scale=scale)
    assert trait.preference(4) == 4
    negative = trait.model_copy(update={"polarity": "negative"})
    assert negative.preference(4) == -4
    with pytest.raises(ValidationError, match="lowercase letters"):
        TraitSpec(name="Honesty!", description="d", guidelines="g")
    with pytest.raises(ValidationError, match="must be greater than min"):
        RatingScale(min=3, max=3)
    with pytest.raises(ValidationError, match=r"lie outside the scale 1\.\.5"):
        RatingScale(min=1, max=5, labels={7: "too high"})


def test_guideline_version_changes_with_the_rubric():
    trait = TraitSpec(name="honesty", description="d", guidelines="Be true.")
    edited = trait.model_copy(update={"guidelines": "Be true and calibrated."})
    assert trait.guideline_version != edited.guideline_version
    assert len(trait.guideline_version) == 12


def test_scores_probability_must_be_a_probability():
    Scores(
        candidate_id="c", scorer="embedding-logreg.v1", trait="honesty", score=2.0, probability=0.7
    )
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        Scores(
            candidate_id="c", scorer="linguistic.v1", trait="honesty", score=2.0, probability=1.5
        )


def test_task_id_ignores_candidate_order_and_rejects_repeats():
    one = ComparisonTask(
        prompt_id="p", candidate_ids=["a", "b"], trait="honesty", reason="uncertainty"
    )
    two = ComparisonTask(
        prompt_id="p", candidate_ids=["b", "a"], trait="honesty", reason="diversity"
    )
    assert one.id == two.id
    with pytest.raises(ValidationError, match="same candidate twice"):
        ComparisonTask(prompt_id="p", candidate_ids=["a", "a"], trait="honesty", reason="random")
    with pytest.raises(ValidationError, match="at least 2 items"):
        ComparisonTask(prompt_id="p", candidate_ids=["a"], trait="honesty", reason="random")


def test_judgement_needs_an_answer_and_is_one_per_annotator_and_task():
    ranking = [RankedCandidate(candidate_id="a", rank=1), RankedCandidate(candidate_id="b", rank=2)]
    j = Judgement(task_id="t", annotator_id="ann-1", ranking=ranking)
    edited = Judgement(task_id="t", annotator_id="ann-1", ranking=list(reversed(ranking)))
    assert j.id == edited.id
    with pytest.raises(ValidationError, match="needs a ranking or ratings"):
        Judgement(task_id="t", annotator_id="ann-1")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        RankedCandidate(candidate_id="a", rank=0)


def test_a_judgement_is_a_tie_when_its_ranking_puts_every_candidate_level():
    def ranked(*ranks):
        ranking = [
            RankedCandidate(candidate_id=c, rank=r) for c, r in zip("abc", ranks, strict=False)
        ]
        return Judgement(task_id="t", annotator_id="ann-1", ranking=ranking)

    assert ranked(1, 1).is_tie and ranked(2, 2, 2).is_tie
    assert not ranked(1, 2).is_tie
    assert not ranked(1, 1, 2).is_tie  # a partial tie still orders c below a and b
    assert not ranked(1).is_tie  # one candidate: nothing was compared
    rated = Judgement(task_id="t", annotator_id="ann-1", ratings={"a": {"harmlessness": 3}})
    assert not rated.is_tie
    # the stored record is unchanged: a tie is read from the ranking, not written beside it
    assert "is_tie" not in ranked(1, 1).model_dump()


def test_preference_pair_refuses_degenerate_pairs():
    fields = dict(
        prompt_id="p",
        prompt=QUESTION,
        chosen=TRUE,
        rejected=FALSE,
        chosen_id="a",
        rejected_id="b",
        trait="honesty",
        margin=1.0,
        origin="gold",
    )
    pair = PreferencePair(**fields)
    assert pair.id == PreferencePair(**fields).id
    with pytest.raises(ValidationError, match="same response"):
        PreferencePair(**{**fields, "rejected": TRUE + "  "})
    with pytest.raises(ValidationError, match="same response"):
        PreferencePair(**{**fields, "rejected_id": "a"})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        PreferencePair(**{**fields, "margin": -0.5})


def test_a_round_record_of_an_earlier_version_loads_under_the_new_names():
    old = {
        "round": 2,
        "labels": 160,
        "completed": ["select", "push", "annotate", "pull", "export", "train", "score"],
        "seconds": {"train": 3.5, "score": 0.1},
    }
    record = LoopRound.model_validate_json(json.dumps(old))
    assert record.judgements_total == 160
    assert record.completed == list(STEPS[:-1])  # a resumed round runs only "report"
    assert record.seconds == {"train": 3.5, "use-model": 0.1}
    saved = json.loads(record.model_dump_json())
    assert saved["judgements_total"] == 160 and "labels" not in saved
    assert LoopRound.model_validate(saved) == record
