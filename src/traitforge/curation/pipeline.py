"""`curate`: embed -> flag -> dedup -> score -> select, as an explicit, checked list of stages.

Stages compute; the runner stores each stage's output in the workspace before the next one
starts, so a killed run resumes with cached embeddings and never duplicates a record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

from traitforge.curation.dedup import CorpusSearch, NearDuplicateFinder
from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.curation.ensemble import Comparison, comparisons
from traitforge.curation.flags import ResponseFlagger
from traitforge.curation.gaps import TraitGap, gold_gap, trait_gaps, unscored_note
from traitforge.curation.linguistic import LinguisticFeaturizer
from traitforge.curation.pool import PromptPool, plural
from traitforge.curation.progress import StageProgress
from traitforge.curation.recheck import RecheckEntry, Rechecks, recheck_tasks
from traitforge.curation.scorers import (
    CandidateFeatures,
    Example,
    Scorer,
    TraitClassifier,
    get_scorer,
)
from traitforge.curation.scorers.classifier import MIN_EXAMPLES_PER_CLASS, TrainResult
from traitforge.curation.scorers.features import prompt_texts
from traitforge.curation.scorers.judge import TraitJudge
from traitforge.curation.selection import (
    EPISTEMIC,
    UNSCORED_DETAIL,
    GoldChecks,
    PairSelector,
    SelectionInputs,
)
from traitforge.curation.trait_budget import TraitShare, describe
from traitforge.errors import ConfigError, TraitforgeError, WorkspaceError
from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    DuplicateMark,
    Flag,
    ProjectConfig,
    Scores,
    TraitSpec,
)
from traitforge.workspace import Store


@dataclass
class CurationState:
    """What the stages have produced so far; a stage reads fields that earlier ones filled."""

    candidates: list[Candidate]
    embedded: dict[str, int] = field(default_factory=dict)  # "computed" / "cached" -> texts
    features: CandidateFeatures | None = None
    token_counts: list[int] | None = None
    flags: list[Flag] | None = None
    duplicates: list[DuplicateMark] | None = None
    scores: list[Scores] | None = None
    tasks: list[ComparisonTask] | None = None
    selection_note: str | None = None  # why the round got fewer tasks than its budget
    acquisition: str | None = None  # what an epistemic strategy scored with
    gold_checks: GoldChecks | None = None  # how many gold checks were wanted, possible, made
    trait_shares: list[TraitShare] = field(default_factory=list)  # the budget, trait by trait
    # Nothing ranked the options: the strategy selection used instead ('random', 'diversity').
    unscored: str | None = None
    rechecks: Rechecks | None = None  # the audit's doubted pairs sent back, first in the round
    trained: list[TrainResult] = field(default_factory=list)
    scoring_notes: list[str] = field(default_factory=list)  # e.g. the judge's cached/computed

    def eligible(self) -> list[Candidate]:
        """Candidates that may be scored and paired: not flagged, not a same-prompt copy."""
        excluded = {f.candidate_id for f in self.flags or []}
        excluded |= {d.candidate_id for d in self.duplicates or [] if d.scope == "prompt"}
        return [c for c in self.candidates if c.id not in excluded]


class Stage(Protocol):
    name: str
    requires: frozenset[str]
    provides: frozenset[str]

    def setup(self) -> None: ...

    def process(self, state: CurationState) -> None: ...


def check_stages(stages: Sequence[Stage]) -> None:
    """Before any work: every stage's inputs must come from a stage before it."""
    available = {"candidates"}
    for stage in stages:
        missing = sorted(stage.requires - available)
        if missing:
            raise ConfigError(
                f"curation stage '{stage.name}' needs {missing}, which no earlier stage "
                f"provides (order: {[s.name for s in stages]}); move a stage that provides "
                f"{missing} before it"
            )
        available |= stage.provides


ScoreFn = Callable[[Scorer, CandidateFeatures, Sequence[str]], list[Scores]]


def local_score(scorer: Scorer, features: CandidateFeatures, traits: Sequence[str]) -> list[Scores]:
    return scorer.score(features, traits)


@dataclass(frozen=True)
class Engine:
    """Where the embed, dedup and score stages do their heavy work (`curation.engine`): the
    embedder class that encodes uncached texts, the corpus-scope near-duplicate search (None:
    the finder's own neighbour search), and the function that scores with one scorer."""

    embedder: type[Embedder] = Embedder
    score: ScoreFn = local_score
    corpus_search: CorpusSearch | None = None


def engine_for(config: ProjectConfig, cache_path: Path) -> Engine:
    """The local engine, or the Ray one (a ConfigError naming the install command when Ray
    is missing, raised before any model loads)."""
    if config.curation.engine == "local":
        return Engine()
    from traitforge.curation import ray_engine

    ray_engine.require_ray()
    shards = cache_path.parent / ray_engine.SHARD_FOLDER
    return Engine(
        ray_engine.RayEmbedder,
        ray_engine.score_with_ray(shards),
        ray_engine.corpus_search_with_ray(shards),
    )


class EmbeddingStage:
    name = "embed"
    requires = frozenset({"candidates"})
    provides = frozenset({"features", "token_counts"})

    def __init__(
        self,
        config: ProjectConfig,
        cache: EmbeddingCache,
        progress: StageProgress | None = None,
        embedder: type[Embedder] = Embedder,
    ) -> None:
        self.embedder = embedder(config.curation.embedding, cache)
        self.progress = progress

    def setup(self) -> None:
        self.embedder.setup()

    def process(self, state: CurationState) -> None:
        def report(label: str) -> Callable[[int, int], object] | None:
            progress = self.progress
            if progress is None:
                return None
            return lambda done, total: progress(label, done, total)

        texts = [c.response for c in state.candidates]
        cache = self.embedder.cache
        responses = self.embedder.embed(texts, report("embed responses"))
        prompts = self.embedder.embed(prompt_texts(state.candidates), report("embed prompts"))
        state.features = CandidateFeatures(
            candidates=state.candidates,
            prompt_vectors=prompts,
            response_vectors=responses,
            embedding_model=self.embedder.config.model,
            # rows cached by text beside the vectors: a later round parses no text twice
            linguistic_featurizer=LinguisticFeaturizer(cache=cache.path if cache else None),
        )
        state.token_counts = self.embedder.token_counts(texts)
        state.embedded = dict(self.embedder.counts)


class FlagStage:
    name = "flag"
    requires = frozenset({"candidates", "token_counts"})
    provides = frozenset({"flags"})

    def __init__(self, config: ProjectConfig) -> None:
        self.flagger = ResponseFlagger(config.curation.flags)

    def setup(self) -> None:
        self.flagger.setup()

    def process(self, state: CurationState) -> None:
        state.flags = self.flagger.process(state.candidates, state.token_counts)


class DedupStage:
    name = "dedup"
    requires = frozenset({"features", "flags"})
    provides = frozenset({"duplicates"})

    def __init__(self, config: ProjectConfig, corpus_search: CorpusSearch | None = None) -> None:
        self.finder = NearDuplicateFinder(config.curation.dedup, corpus_search)

    def setup(self) -> None:
        return None

    def process(self, state: CurationState) -> None:
        assert state.features is not None
        flagged = {f.candidate_id for f in state.flags or []}
        keep = [c.id for c in state.candidates if c.id not in flagged]
        part = state.features.subset(keep)
        state.duplicates = self.finder.process(part.candidates, part.response_vectors)


class ScoreStage:
    """Scores eligible candidates with every configured scorer; trains a classifier scorer
    first when it has no model for a trait yet and labels exist."""

    name = "score"
    requires = frozenset({"features", "flags", "duplicates"})
    provides = frozenset({"scores"})

    def __init__(
        self,
        config: ProjectConfig,
        artifacts: Path,
        examples: dict[str, list[Example]] | None = None,
        progress: StageProgress | None = None,
        score: ScoreFn = local_score,
    ) -> None:
        self.config = config
        self.artifacts = artifacts
        self.examples = examples
        self.progress = progress
        self.score = score

    def setup(self) -> None:
        for key in self.config.curation.scorers:
            get_scorer(key, self.artifacts, self.config)  # fail on an unknown key first

    def process(self, state: CurationState) -> None:
        assert state.features is not None
        eligible = state.eligible()
        features = state.features.subset([c.id for c in eligible])
        traits = [t.name for t in self.config.traits]
        scores: list[Scores] = []
        for key in self.config.curation.scorers:
            scorer = get_scorer(key, self.artifacts, self.config)
            if isinstance(scorer, TraitClassifier):
                examples = self.examples or gold_examples(eligible, self.config.traits)
                for trait, trait_examples in sorted(examples.items()):
                    if trait not in scorer.trained_traits() and _trainable(trait_examples):
                        state.trained.append(scorer.train(trait, state.features, trait_examples))
            elif isinstance(scorer, TraitJudge):
                # Calibrated on the same labels the classifiers learn from.
                scorer.examples = self.examples or gold_examples(eligible, self.config.traits)
                if self.progress is not None:  # a model pass per batch: the slow part
                    scorer.progress = partial(self.progress, f"score: {key}")
            scores += self.score(scorer, features, traits)
            if isinstance(scorer, TraitJudge):
                state.scoring_notes.append(scorer.summary())
        state.scores = scores


class SelectStage:
    name = "select"
    requires = frozenset({"features", "flags", "duplicates", "scores"})
    provides = frozenset({"tasks"})

    def __init__(
        self,
        config: ProjectConfig,
        existing: Sequence[ComparisonTask],
        budget: int,
        round_: int,
        answers: Sequence[Comparison] = (),
        rechecks: Sequence[RecheckEntry] = (),
    ) -> None:
        self.selector = PairSelector(config)
        self.selection = config.curation.selection
        self.traits = {t.name for t in config.traits}
        self.existing = existing
        self.answers = answers
        self.rechecks = rechecks
        self.budget = budget
        self.round = round_

    def setup(self) -> None:
        return None

    def process(self, state: CurationState) -> None:
        assert state.features is not None
        eligible = state.eligible()
        in_round = [t for t in self.existing if t.round == self.round]
        index = state.features.index
        wanted = self.budget - len(in_round)
        # Re-checks come first, within the budget; the selector sees them as asked, so it
        # neither repeats them nor exceeds tasks_per_prompt with them.
        rechecks = recheck_tasks(
            self.rechecks, eligible, self.existing, self.traits, max(wanted, 0), self.round
        )
        state.rechecks = rechecks
        inputs = SelectionInputs(
            candidates=eligible,
            scores=state.scores or [],
            prompt_vectors={
                c.prompt_id: state.features.prompt_vectors[index[c.id]] for c in eligible
            },
            response_vectors={c.id: state.features.response_vectors[index[c.id]] for c in eligible},
            existing=[*self.existing, *rechecks.tasks],
            answers=self.answers,
        )
        selected = self.selector.process(inputs, wanted - len(rechecks.tasks), self.round)
        state.tasks = rechecks.tasks + selected
        state.acquisition = getattr(self.selector, "acquired_with", None)
        state.gold_checks = getattr(self.selector, "gold_checks", None)
        state.trait_shares = list(getattr(self.selector, "trait_shares", {}).values())
        state.unscored = getattr(self.selector, "unscored", None)
        if len(state.tasks) < wanted:
            state.selection_note = self._shortfall(eligible, len(state.tasks), wanted)

    def _shortfall(self, eligible: Sequence[Candidate], selected: int, wanted: int) -> str:
        """Why fewer than `wanted` tasks came: the prompts left open, then the selector's own
        reason (`PairSelector.note`, e.g. that nothing scores above chance)."""
        pool = PromptPool.count(eligible, self.existing, self.selection)
        notes = [n for n in (pool.note(wanted), getattr(self.selector, "note", None)) if n]
        return "; ".join(notes) or (
            f"{selected} of the {wanted} tasks wanted were selected from "
            f"{plural(pool.open, 'open prompt')}"
        )


def gold_examples(
    candidates: Sequence[Candidate], traits: Sequence[TraitSpec]
) -> dict[str, list[Example]]:
    """Binary labels from gold values: 1 for the preferred half (by the trait's polarity).

    Values within [0, 1] are split at 0.5; others at the middle of the trait's rating scale.
    """
    examples: dict[str, list[Example]] = {}
    for trait in traits:
        values = [(c.id, c.gold[trait.name]) for c in candidates if trait.name in c.gold]
        if not values:
            continue
        unit = all(0.0 <= v <= 1.0 for _, v in values)
        middle = 0.5 if unit else (trait.scale.min + trait.scale.max) / 2
        threshold = trait.preference(middle)
        examples[trait.name] = [
            Example(cid, int(trait.preference(v) >= threshold)) for cid, v in values
        ]
    return examples


def _trainable(examples: Sequence[Example]) -> bool:
    positives = sum(e.label for e in examples)
    return min(positives, len(examples) - positives) >= MIN_EXAMPLES_PER_CLASS


@dataclass
class CurationReport:
    candidates: int
    embedded: dict[str, int]  # distinct texts: "computed" by the model, "cached" before
    flagged: dict[str, int]
    duplicates: dict[str, int]
    scored: dict[str, int]  # "scorer/trait" -> candidates
    trained: list[TrainResult]
    new_tasks: dict[str, int]  # reason -> count
    tasks_in_round: int
    budget: int
    round: int
    # Set when the round got fewer tasks than its budget: why (no open prompt left, or the
    # selector's reason, such as nothing scoring above chance).
    selection_note: str | None = None
    acquisition: str | None = None  # epistemic strategies: the ensemble, or the classifiers
    # Tasks chosen without scores, as no scorer had scored anything: at random, or for
    # diversity alone (`unscored_by`); counted in new_tasks under that reason.
    unscored_tasks: int = 0
    unscored_by: str | None = None
    gold_checks: GoldChecks | None = None
    # Each trait's share of the round's budget (`curation.selection.trait_budget`), what it
    # got and why it got less; empty when nothing was selected from.
    trait_shares: list[TraitShare] = field(default_factory=list)
    trait_budget: str = "equal shares"  # the rule, as printed
    trait_gaps: list[TraitGap] = field(default_factory=list)
    # What the round could not do, each with what to do: nothing scored, gold checks short,
    # traits without candidates or without tasks.
    warnings: list[str] = field(default_factory=list)
    # Lines from scorers on what they did, e.g. the judge's computed and cached ratings.
    scoring_notes: list[str] = field(default_factory=list)
    # The label audit's doubted pairs (`audit --recheck`): tasks sent back this round (also
    # in new_tasks under "recheck"), ones left for a later round's budget, and ones skipped.
    # None when there is no re-check list.
    rechecks: Rechecks | None = None


@dataclass
class ClassifierTraining:
    """What `classifiers train` did: one model per labelled trait, and what it did not do."""

    trained: list[TrainResult]
    warnings: list[str] = field(default_factory=list)  # e.g. a configured trait without labels


def train_classifiers(
    store: Store,
    config: ProjectConfig,
    artifacts: Path,
    cache_path: Path,
    examples: dict[str, list[Example]] | None = None,
    progress: StageProgress | None = None,
) -> ClassifierTraining:
    """(Re)train every classifier scorer in the config on gold labels, or on `examples`.

    A configured trait without labels, or with too few of one class, gets no classifier and
    a warning; no trait to train is an error, raised before a model loads when the store
    already shows it."""
    _require_candidates(store)
    classifiers = [
        scorer
        for key in config.curation.scorers
        if isinstance(scorer := get_scorer(key, artifacts, config), TraitClassifier)
    ]
    if not classifiers:
        raise ConfigError(
            f"curation.scorers ({config.curation.scorers}) holds no classifier scorer, so "
            "there is nothing to train; add 'embedding-logreg.v1' to curation.scorers"
        )
    traits = [t.name for t in config.traits]
    labelled = set(examples) if examples is not None else store.gold_traits()
    if not labelled & set(traits):
        raise TraitforgeError(_no_labels(store, traits, examples is None))
    engine = engine_for(config, cache_path)
    with EmbeddingCache(cache_path) as cache:
        stages: list[Stage] = [
            EmbeddingStage(config, cache, progress, engine.embedder),
            FlagStage(config),
            DedupStage(config, engine.corpus_search),
        ]
        state = _run(store, stages, progress)
    eligible = state.eligible()
    allowed = {c.id for c in eligible}
    usable = {
        trait: kept
        for trait, trait_examples in (
            examples if examples is not None else gold_examples(eligible, config.traits)
        ).items()
        if (kept := [e for e in trait_examples if e.candidate_id in allowed])
    }
    unlabelled = [t for t in traits if t not in usable]
    if not usable:
        raise TraitforgeError(_no_labels(store, unlabelled, examples is None))
    # A trait with too few labels of one class is said and passed over: the others train.
    short = [_too_few(t, ex) for t, ex in sorted(usable.items()) if not _trainable(ex)]
    trainable = {t: ex for t, ex in usable.items() if _trainable(ex)}
    if not trainable:
        raise TraitforgeError("no classifier to train: " + "; ".join(short))
    assert state.features is not None
    results = []
    for scorer in classifiers:
        for trait, trait_examples in sorted(trainable.items()):
            if progress:
                progress(f"train {scorer.key} / {trait}", 0, 1)
            results.append(scorer.train(trait, state.features, trait_examples))
    warnings = [_no_labels(store, unlabelled, examples is None, some=True)] if unlabelled else []
    return ClassifierTraining(results, warnings + short)


def _too_few(trait: str, examples: Sequence[Example]) -> str:
    positives = sum(e.label for e in examples)
    return (
        f"{trait} has {positives} positive and {len(examples) - positives} negative examples "
        f"(at least {MIN_EXAMPLES_PER_CLASS} of each are needed), so no classifier was trained "
        f"for it; annotate more tasks on {trait} and pull them, or ingest gold labels for it"
    )


def _no_labels(store: Store, traits: Sequence[str], gold: bool, some: bool = False) -> str:
    """What to say when no usable candidate has labels for `traits`, and how to get some."""
    kind = "gold labels" if gold else "annotator judgements"
    fix = (
        "ingest data with gold labels for them (e.g. `traitforge ingest -f truthfulqa FILE`), "
        "or annotate tasks, pull the judgements and train with --origin judgements"
        if gold
        else "annotate tasks on them and pull the judgements, or train with --origin gold"
    )
    where = (
        f"no usable candidate in {store.path.parent} (not flagged, not a same-prompt "
        f"duplicate) has {kind} for {', '.join(traits)}"
    )
    if some:
        return f"{where}, so no classifier was trained for them; {fix}"
    return f"no classifier to train: {where}; {fix}"


def _require_candidates(store: Store) -> None:
    """Refuse an empty workspace before any model loads."""
    if not store.counts()["candidates"]:
        raise WorkspaceError(
            f"nothing to curate: {store.path.parent} holds no candidates; run "
            "`traitforge ingest` first"
        )


def _run(store: Store, stages: list[Stage], progress: StageProgress | None) -> CurationState:
    check_stages(stages)
    _require_candidates(store)
    for stage in stages:
        stage.setup()
    state = CurationState(candidates=list(store.candidates()))
    for stage in stages:
        if progress:
            progress(stage.name, 0, 1)
        stage.process(state)
        _store(store, stage.name, state)
        if progress:
            progress(stage.name, 1, 1)
    return state


def curate(
    store: Store,
    config: ProjectConfig,
    artifacts: Path,
    cache_path: Path,
    budget: int,
    round_: int = 0,
    examples: dict[str, list[Example]] | None = None,
    progress: StageProgress | None = None,
    rechecks: Sequence[RecheckEntry] | None = None,
) -> CurationReport:
    """Run the curation stages over every candidate in the store and add the selected tasks;
    `rechecks` (the audit's doubted pairs; None: no re-check list) are sent back first."""
    existing = list(store.tasks())
    # Every answer so far, ties included: what the epistemic strategies' ensemble learns from
    # (read only for them: the other strategies never look at answers).
    epistemic = config.curation.selection.strategy in EPISTEMIC
    answers = comparisons(existing, store.judgements()) if epistemic else []
    engine = engine_for(config, cache_path)
    with EmbeddingCache(cache_path) as cache:
        stages: list[Stage] = [
            EmbeddingStage(config, cache, progress, engine.embedder),
            FlagStage(config),
            DedupStage(config, engine.corpus_search),
            ScoreStage(config, artifacts, examples, progress, engine.score),
            SelectStage(config, existing, budget, round_, answers, rechecks or ()),
        ]
        state = _run(store, stages, progress)
    tasks = state.tasks or []
    gaps = trait_gaps(
        config, PairSelector(config).prompt_traits, state.eligible(), existing + tasks, round_
    )
    picked = [t for t in tasks if not t.gold_check and t.reason != "recheck"]
    # Per trait: one trait may have had nothing to rank by while another had scores.
    detail = UNSCORED_DETAIL.get(state.unscored or "")
    unscored = sum(t.reason_detail == detail for t in picked) if detail else 0
    warnings = []
    if unscored and state.unscored is not None:
        warnings.append(unscored_note(unscored, config.curation.scorers, state.unscored))
    gold = gold_gap(state.gold_checks, config.curation.selection.gold_fraction)
    if gold is not None:
        warnings.append(gold)
    warnings += [g.message for g in gaps]
    return CurationReport(
        candidates=len(state.candidates),
        embedded=state.embedded,
        flagged=dict(Counter(f.reason for f in state.flags or [])),
        duplicates=dict(Counter(d.scope for d in state.duplicates or [])),
        scored=dict(Counter(f"{s.scorer}/{s.trait}" for s in state.scores or [])),
        trained=state.trained,
        new_tasks=dict(Counter(t.reason for t in tasks)),
        tasks_in_round=sum(t.round == round_ for t in existing) + len(tasks),
        budget=budget,
        round=round_,
        selection_note=state.selection_note,
        acquisition=state.acquisition,
        unscored_tasks=unscored,
        unscored_by=state.unscored if unscored else None,
        gold_checks=state.gold_checks,
        trait_shares=state.trait_shares,
        trait_budget=describe(config.curation.selection.trait_budget),
        trait_gaps=gaps,
        warnings=warnings,
        scoring_notes=state.scoring_notes,
        rechecks=state.rechecks if rechecks is not None else None,
    )


def _store(store: Store, stage: str, state: CurationState) -> None:
    with store.transaction():
        if stage == "flag":
            store.replace_flags(state.flags or [])
        elif stage == "dedup":
            store.replace_duplicates(state.duplicates or [])
        elif stage == "score":
            store.put_scores(state.scores or [])
        elif stage == "select":
            store.add_tasks(state.tasks or [])
