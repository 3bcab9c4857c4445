"""Measured results that records keep: a reward model's evaluation, the cross-trait
generalization matrix, and annotator agreement.

`model_dump(mode="json")` is the JSON that eval.json, matrix.json, round.json, provenance.json
and `traitforge eval --json` hold, key for key, and each model reads back what those files
hold (files written before these models existed included).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    field_serializer,
    model_serializer,
)

_RESULT = ConfigDict(extra="forbid", frozen=True)

Interval = list[float]  # [low, high] of a bootstrap percentile interval


class TraitAccuracy(BaseModel):
    """Accuracy on one trait's pairs, beside the length baseline of the same pairs."""

    model_config = _RESULT

    pairs: int
    accuracy: float
    accuracy_ci: Interval | None
    length_baseline: float = Field(description="Accuracy of 'the longer response wins'.")


class FormatSensitivity(BaseModel):
    """What one meaningless edit of the responses does to the reward."""

    model_config = _RESULT

    mean_shift: float = Field(description="Mean reward change, in reward standard deviations.")
    mean_abs_shift: float = Field(description="Mean absolute change, in standard deviations.")
    flip_rate: float = Field(
        description="Share of preferred pairs flipped by editing the rejected side alone."
    )
    accuracy_after: float = Field(description="Accuracy with both sides edited.")


class Shortcuts(BaseModel):
    """Checks for rewards that follow length or format instead of the trait."""

    model_config = _RESULT

    length_baseline_accuracy: float
    chosen_shorter_pairs: int
    accuracy_chosen_shorter: float | None = Field(
        description="Accuracy on the pairs whose chosen response is the shorter; None if none."
    )
    accuracy_chosen_shorter_ci: Interval | None
    length_reward_spearman: float
    format: dict[str, FormatSensitivity] = Field(description="Perturbation name -> effect.")


class StyleHard(BaseModel):
    """Accuracy when the chosen answer has the worse style (after RM-Bench, arXiv
    2410.16184): rule-based variants make the chosen side plainer or shorter and the rejected
    side longer, more formatted or more confident, content unchanged."""

    model_config = _RESULT

    pairs: int = Field(description="Pairs scored in at least one variant.")
    accuracy: float = Field(description="Mean of the per-variant accuracies.")
    accuracy_ci: Interval | None = Field(description="Bootstrap interval, resampling pairs.")
    per_variant: dict[str, float] = Field(description="Variant name -> accuracy.")
    variant_pairs: dict[str, int] = Field(
        description="Variant name -> pairs scored: a pair whose two sides come out the same "
        "text is left out of that variant."
    )
    per_trait: dict[str, float] = Field(
        default_factory=dict, description="Trait -> mean of its per-variant accuracies."
    )
    ratio: float | None = Field(
        description="accuracy / the normal accuracy on the same pairs; None when that is 0."
    )


class CalibrationBin(BaseModel):
    model_config = _RESULT

    bin: int
    count: int
    predicted: float
    observed: float


class Calibration(BaseModel):
    """Calibration of P(chosen > rejected) = sigmoid(margin), every pair seen both ways."""

    model_config = _RESULT

    ece: float
    brier: float
    log_loss: float
    mean_probability: float
    bins: list[CalibrationBin] = Field(description="Non-empty reliability bins, in order.")


class RewardStats(BaseModel):
    model_config = _RESULT

    mean: float
    std: float
    mean_margin: float = Field(description="Mean of chosen minus rejected.")


class _Reported(BaseModel):
    """A result that may name the HTML report written for it. The key comes last in the
    JSON, and is left out when there is none, as it always was. So are the keys named in
    `_left_out_when_none`: fields added later, so files written before them read back to the
    same bytes."""

    _left_out_when_none: ClassVar[tuple[str, ...]] = ()
    report: str | None = Field(None, description="The HTML report written for this result.")

    @model_serializer(mode="wrap")
    def _report_last(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        for key in self._left_out_when_none:
            if key in data and data[key] is None:
                del data[key]
        if (report := data.pop("report", None)) is not None:
            data["report"] = report
        return data


class EvaluationResult(_Reported):
    """How far to trust a reward model on a set of pairs; `accuracy` is the headline."""

    model_config = _RESULT
    _left_out_when_none = ("style_hard",)

    pairs: int = Field(description="Pairs scored.")
    skipped: dict[str, int] = Field(
        default_factory=dict, description="Reason -> pairs left out: no reward can order them."
    )
    accuracy: float
    accuracy_ci: Interval | None
    per_trait: dict[str, TraitAccuracy] = Field(default_factory=dict)
    shortcuts: Shortcuts
    calibration: Calibration
    rewards: RewardStats
    confidence_level: float = 0.95
    style_hard: StyleHard | None = Field(
        None,
        description="Accuracy on style-hard variants of the pairs; None in results written "
        "before it, or when no pair could be varied.",
    )


class MatrixCell(BaseModel):
    model_config = _RESULT

    pairs: int
    accuracy: float
    accuracy_ci: Interval | None


class MatrixResult(_Reported):
    """Each model on every trait's pairs: rows are models, columns test traits."""

    model_config = _RESULT

    models: list[str]
    traits: list[str]
    cells: dict[str, dict[str, MatrixCell]] = Field(description="Model -> test trait -> cell.")
    skipped: dict[str, int] = Field(default_factory=dict)


class TrainingSummary(BaseModel):
    """What one reward model learned from: distinct pairs and passes over them, apart."""

    model_config = _RESULT

    pairs: int = Field(description="Distinct training pairs (after the length check).")
    epochs: float = Field(description="Passes over those pairs.")
    steps: int = Field(description="Optimizer steps made.")
    epochs_capped: bool = Field(
        False,
        description="reward.max_epochs kept training from the epochs reward.min_steps asked for.",
    )
    seconds: float
    started_from: str | None = Field(
        None, description="The earlier round's model it continued (reward.warm_start)."
    )
    method: str = Field("fine-tune", description="reward.method: how the model was trained.")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# Agreement figures are written rounded, so exports that hold them stay byte-identical.
Rounded = Annotated[float | None, PlainSerializer(_rounded)]  # None where it is undefined


class TraitAgreement(BaseModel):
    """Krippendorff's alpha for one trait; None where alpha is undefined."""

    model_config = _RESULT

    preference_alpha: Rounded = Field(
        description="Nominal, on the tasks that ask about this trait."
    )
    preference_units: int = Field(
        description="Candidate pairs answered by at least two annotators."
    )
    rating_alpha: Rounded = Field(description="Ordinal, on the ratings of this trait.")
    rating_units: int = Field(
        description="(task, candidate) ratings given by at least two annotators."
    )


class AnnotatorQuality(BaseModel):
    model_config = _RESULT

    answers: int = Field(description="Judgements on tasks in the workspace.")
    agreement: Rounded = Field(
        description="Share of compared units where they matched the others' majority."
    )
    compared: int = Field(description="Units where the other annotators had a majority.")
    gold_accuracy: Rounded = Field(
        description="Mean share of gold-ordered pairs they ordered the same way."
    )
    gold_tasks: int = Field(description="Gold-check tasks with a readable answer from them.")
    flagged: bool
    reasons: tuple[str, ...] = ()


class TraitTies(BaseModel):
    """Ties on one trait's preference question: answers in their own right, kept apart from
    the drops so a reader sees how often annotators could not tell the candidates apart."""

    model_config = _RESULT

    answers: int = Field(
        0, description="Readable answers to the trait's preference question, ties included."
    )
    tied: int = Field(0, description="Of those, answers that put every candidate level.")
    tasks: int = Field(
        0, description="Tasks whose every readable answer tied: no pair came out of them."
    )

    @property
    def share(self) -> float | None:
        """Tied answers over all answers; None before any answer."""
        return self.tied / self.answers if self.answers else None


class AgreementResult(BaseModel):
    """How far annotators agree (per trait and overall), and each annotator's quality."""

    model_config = _RESULT

    preference_alpha: Rounded = Field(
        description="Nominal, every trait's preference units together."
    )
    rating_alpha: Rounded = Field(description="Ordinal, every trait's ratings scaled to [0, 1].")
    traits: dict[str, TraitAgreement] = Field(description="Trait -> its alpha.")
    annotators: dict[str, AnnotatorQuality] = Field(description="Annotator id -> quality.")

    @property
    def flagged(self) -> frozenset[str]:
        return frozenset(a for a, q in self.annotators.items() if q.flagged)

    def rounded(self) -> AgreementResult:
        """The figures as files hold them: a report made now shows what one made later from
        the stored record will."""
        return AgreementResult.model_validate(self.model_dump(mode="json"))

    @field_serializer("traits", "annotators", mode="wrap")
    def _by_name(self, value: dict[str, Any], handler: SerializerFunctionWrapHandler) -> Any:
        return handler(dict(sorted(value.items())))


class TraitJudgeAgreement(BaseModel):
    """How often the trait judge orders a pair of candidates as the annotators' majority does,
    on the pairs of the tasks that asked about this trait."""

    model_config = _RESULT

    compared: int = Field(description="Pairs with a majority direction and two judge ratings.")
    agreed: int = Field(description="Of those, pairs the judge orders the same way.")
    share: Rounded = Field(description="agreed / compared; None when nothing was compared.")
    share_ci: Interval | None = Field(
        description="95% Wilson interval of the share; None when nothing was compared."
    )
    annotator_ties: int = Field(
        description="Pairs left out: the annotators' votes split evenly or all tied."
    )
    judge_ties: int = Field(description="Pairs left out: the judge rated both sides the same.")
    unscored: int = Field(description="Pairs left out: the judge rated a side not at all.")


class JudgeAgreement(BaseModel):
    """The trait judge against the annotators, per trait: a figure of how far to trust it."""

    model_config = _RESULT

    scorer: str = Field(description="Versioned key of the judge, e.g. 'judge.v1'.")
    traits: dict[str, TraitJudgeAgreement] = Field(description="Trait -> agreement.")


class LengthPositionFit(BaseModel):
    """One trait's or one annotator's decided two-way votes regressed on position and length:
    logit P(first shown wins) = a + b * log2(words of first / words of second).

    `a` is the position bias (P(first wins) between responses of equal length) and `b` the
    length bias (log odds ratio per doubling of the first response's length). The model
    figures are None, with `note` saying why, when there are too few votes or no finite fit.
    """

    model_config = _RESULT

    votes: int = Field(description="Decided two-way comparisons in the fit.")
    ties: int = Field(description="Comparisons the annotator left level: counted, not fitted.")
    first_wins: Rounded = Field(description="Share of the decided votes won by the first shown.")
    position: Rounded = Field(description="Fitted P(first shown wins) at equal length.")
    position_ci: Interval | None = Field(description="95% Wald interval of `position`.")
    length_odds_ratio: Rounded = Field(
        description="Odds of winning, per doubling of a response's length (1 = no length bias)."
    )
    length_odds_ratio_ci: Interval | None = Field(description="95% Wald interval of it.")
    unequal: int = Field(description="Decided votes on responses of different length.")
    longer_won: Rounded = Field(description="Of those, the share the longer response won.")
    length_pseudo_r2: Rounded = Field(
        description="McFadden pseudo-R² that length adds to position alone: the share of the "
        "votes' log-likelihood that length explains."
    )
    note: str | None = Field(None, description="Why the model figures are missing, if they are.")


class LengthPositionResult(BaseModel):
    """Length and position bias in the annotators' own votes, per trait and per annotator
    (pooled over traits)."""

    model_config = _RESULT

    min_votes: int = Field(description="Decided votes a fit needs; fewer give a note instead.")
    traits: dict[str, LengthPositionFit] = Field(description="Trait -> its votes' fit.")
    annotators: dict[str, LengthPositionFit] = Field(description="Annotator id -> their fit.")

    @field_serializer("traits", "annotators", mode="wrap")
    def _by_name(self, value: dict[str, Any], handler: SerializerFunctionWrapHandler) -> Any:
        return handler(dict(sorted(value.items())))


class FlaggedPair(BaseModel):
    """An exported pair whose label the audit committee confidently disagrees with."""

    model_config = _RESULT

    pair_id: str
    prompt_id: str
    source: str = Field(description="The source (and file) of the pair's candidates.")
    prompt: str = Field(description="The prompt as text.")
    chosen: str
    rejected: str
    p_chosen: Rounded = Field(
        description="The committee's out-of-fold P(chosen wins); low: it sides with rejected."
    )


class SourceVerdict(BaseModel):
    """One source of a trait judged by a model fitted on the trait's other sources only."""

    model_config = _RESULT

    source: str
    pairs: int = Field(description="Pairs of this source with embeddings.")
    agreed: int | None = Field(
        description="Of those, pairs the other sources' model orders as labelled; None when "
        "not checked."
    )
    share: Rounded = Field(description="agreed / pairs; None when not checked.")
    share_ci: Interval | None = Field(description="95% Wilson interval of the share.")
    mean_p_chosen: Rounded = Field(
        description="Mean P(chosen wins) under the other sources' model; None when not checked."
    )
    committee_share: Rounded = Field(
        description="Share of this source's pairs the cross-fitted committee (all sources) "
        "agrees with, for comparison."
    )
    verdict: str = Field(
        description="'consistent', 'labels may be inverted', 'labels may be noisy or the "
        "sources teach different things', or 'not checked: ...' with the reason."
    )


class TraitAudit(BaseModel):
    """The label audit of one trait's exported pairs."""

    model_config = _RESULT

    pairs: int = Field(description="Pairs audited (both sides embedded).")
    unembedded: int = Field(description="Pairs left out: a side or the prompt not embedded.")
    committee_share: Rounded = Field(
        description="Share of audited pairs the committee agrees with (P(chosen) > 0.5)."
    )
    threshold: Rounded = Field(
        description="Confident learning's threshold t: the mean out-of-fold P(rejected wins) "
        "of the pairs the committee sides against; a pair is flagged when its P(rejected "
        "wins) >= t. None: no committee, or it sides against no pair or is no better than "
        "chance."
    )
    flagged: list[FlaggedPair] = Field(description="Flagged pairs, most confident first.")
    sources: list[SourceVerdict]
    note: str = Field("", description="Why nothing could be flagged, when that is so.")


class AuditResult(BaseModel):
    """`traitforge audit`: what audit.json holds."""

    model_config = _RESULT

    folds: int = Field(description="Committee members, each fitted on the other folds' prompts.")
    min_source_pairs: int = Field(description="Pairs a source (and its rivals) need to be judged.")
    rule: str = Field(description="The flagging rule, in words.")
    embedding_model: str
    skipped_ai_feedback: int = Field(description="AI-feedback pairs, not audited.")
    traits: dict[str, TraitAudit] = Field(description="Trait -> its audit.")
    export: str | None = Field(
        None,
        description="Fingerprint of the audited export (a hash of its pair ids): a later "
        "export with other pairs makes the audit stale. None in audits written before it.",
    )
    exported_pairs: int | None = Field(None, description="Pairs in the audited export.")

    @field_serializer("traits", mode="wrap")
    def _by_name(self, value: dict[str, Any], handler: SerializerFunctionWrapHandler) -> Any:
        return handler(dict(sorted(value.items())))
