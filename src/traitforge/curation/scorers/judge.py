"""`judge.v1`: an LLM reads each trait's rubric and rates every candidate, before any label.

Round 1 of a workspace without gold labels has nothing else to rank by. The rating is in the
trait's own direction (on its scale); the score is that rating turned into a preference by the
trait's polarity (as gold values are), and the probability is the preference scaled to [0, 1],
Platt-calibrated on labelled candidates (annotators' judgements, else gold) once a trait has
enough of them, like the classifiers.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from traitforge.curation.asked import prompt_traits
from traitforge.curation.scorers.classifier import MIN_EXAMPLES_PER_CLASS, Example
from traitforge.curation.scorers.features import CandidateFeatures
from traitforge.curation.scorers.judge_backends import EndpointRater, LocalRater, Rater
from traitforge.curation.scorers.judge_cache import JudgementCache, JudgementKey, Rating
from traitforge.curation.scorers.judge_prompt import judge_messages, prompt_hash, rubric_hash
from traitforge.errors import ConfigError
from traitforge.schemas import Candidate, ProjectConfig, Scores, TraitSpec, prompt_text

KEY = "judge.v1"
CACHE_FILE = "judgements.sqlite"


def make_rater(config: ProjectConfig) -> Rater:
    judge = config.curation.judge
    if judge.backend == "endpoint":
        return EndpointRater(judge, config.curation.generation)
    return LocalRater(judge)


def preference_share(trait: TraitSpec, rating: float) -> float:
    """A rating as a share of the scale in the preferred direction: 1 is best."""
    low, high = trait.scale.min, trait.scale.max
    share = min(max((rating - low) / (high - low), 0.0), 1.0)
    return share if trait.polarity == "positive" else 1.0 - share


class TraitJudge:
    """Rates candidates with a `Rater`, through the judgement cache in `artifacts/judge.v1/`.

    `examples` (set by the score stage) are the labels it calibrates on; `progress` (set by
    the score stage too) is told (candidates judged, total) over all traits of one `score`
    call, cached ones included; `counts` says how many ratings were "computed", found
    "cached", or left "unscored" in this scorer's life.
    """

    def __init__(
        self, key: str, config: ProjectConfig, artifacts: Path, rater: Rater | None = None
    ) -> None:
        self.key = key
        self.folder = artifacts / key
        self.project = config
        self.settings = config.curation.judge
        self.specs = {t.name: t for t in config.traits}
        self.rater = rater or make_rater(config)
        self.examples: Mapping[str, Sequence[Example]] = {}
        self.progress: Callable[[int, int], object] | None = None
        self.counts: Counter[str] = Counter({"computed": 0, "cached": 0, "unscored": 0})
        self.seconds = 0.0  # spent computing ratings (model load excluded)
        self.calibrated: dict[str, int] = {}  # trait -> labelled candidates it was fitted on
        self.uncalibrated: dict[str, int] = {}  # trait -> labelled candidates (too few)
        self._ready = False

    @property
    def model_key(self) -> str:
        return f"{self.rater.backend}:{self.rater.model}"

    def trained_traits(self) -> list[str]:
        """Every configured trait: a rubric is all the judge needs."""
        return sorted(self.specs)

    def score(self, features: CandidateFeatures, traits: Sequence[str]) -> list[Scores]:
        unknown = sorted(set(traits) - set(self.specs))
        if unknown:
            raise ConfigError(f"{self.key}: no trait spec for {unknown}; add them under traits")
        # Judged only on the traits a prompt is asked about (`curation.asked`).
        by_prompt: dict[str, list[Candidate]] = {}
        for c in features.candidates:
            by_prompt.setdefault(c.prompt_id, []).append(c)
        asked = {p: set(prompt_traits(self.project, m)) for p, m in by_prompt.items()}
        wanted = {
            name: [c for c in features.candidates if name in asked[c.prompt_id]] for name in traits
        }
        wanted = {name: members for name, members in wanted.items() if members}
        total = sum(map(len, wanted.values()))
        done = 0

        def advance(judged: int) -> None:
            nonlocal done
            done += judged
            if self.progress is not None:
                self.progress(done, total)

        scores: list[Scores] = []
        with JudgementCache(self.folder / CACHE_FILE) as cache:
            for name in wanted:
                trait = self.specs[name]
                scores += self._scores(trait, self.ratings(cache, trait, wanted[name], advance))
        return scores

    def ratings(
        self,
        cache: JudgementCache,
        trait: TraitSpec,
        candidates: Sequence[Candidate],
        advance: Callable[[int], None] = lambda judged: None,
    ) -> dict[str, Rating]:
        """candidate id -> rating, from the cache or computed (and cached) batch by batch;
        `advance` is told how many more were judged (or found) each time."""
        prompt, rubric = prompt_hash(self.settings.max_chars), rubric_hash(trait)
        keys = {
            c.id: JudgementKey(self.model_key, prompt, c.id, trait.name, rubric) for c in candidates
        }
        found = cache.get(list(keys.values()))
        ratings = {cid: found[key] for cid, key in keys.items() if key in found}
        self.counts["cached"] += len(ratings)
        advance(len(ratings))
        # Similar lengths together: less padding in a batched forward pass (the rubric before
        # them is the same for all).
        missing = sorted(
            (c for c in candidates if c.id not in ratings),
            key=lambda c: len(prompt_text(c.prompt)) + len(c.response),
        )
        if missing and not self._ready:
            self.rater.setup()
            self._ready = True
        size = self.rater.batch_size
        for start in range(0, len(missing), size):
            batch = missing[start : start + size]
            began = time.perf_counter()
            rated = self.rater.rate(
                trait, [judge_messages(trait, c, self.settings.max_chars) for c in batch]
            )
            self.seconds += time.perf_counter() - began
            done = [(keys[c.id], r) for c, r in zip(batch, rated, strict=True) if r is not None]
            cache.put(done)
            ratings.update({key.candidate_id: r for key, r in done})
            self.counts["computed"] += len(done)
            self.counts["unscored"] += len(batch) - len(done)
            advance(len(batch))
        return ratings

    def _scores(self, trait: TraitSpec, ratings: Mapping[str, Rating]) -> list[Scores]:
        ids = sorted(ratings)
        shares = np.array([preference_share(trait, ratings[i].value) for i in ids])
        probabilities = self._calibrate(trait, ids, shares)
        return [
            Scores(
                candidate_id=cid,
                scorer=self.key,
                trait=trait.name,
                score=round(trait.preference(ratings[cid].value), 6),
                probability=round(float(p), 6),
            )
            for cid, p in zip(ids, probabilities, strict=True)
        ]

    def _calibrate(self, trait: TraitSpec, ids: Sequence[str], shares: np.ndarray) -> np.ndarray:
        """Platt scaling of the preference share on the labelled candidates, when each class
        has MIN_EXAMPLES_PER_CLASS of them; the share itself otherwise."""
        index = {cid: i for i, cid in enumerate(ids)}
        labelled = [e for e in self.examples.get(trait.name, ()) if e.candidate_id in index]
        labels = np.array([e.label for e in labelled], dtype=int)
        positives = int(labels.sum())
        if min(positives, len(labels) - positives) < MIN_EXAMPLES_PER_CLASS:
            self.uncalibrated[trait.name] = len(labelled)
            return shares
        from sklearn.linear_model import LogisticRegression

        x = shares[[index[e.candidate_id] for e in labelled]][:, None]
        platt = LogisticRegression().fit(x, labels)
        self.calibrated[trait.name] = len(labelled)
        return platt.predict_proba(shares[:, None])[:, 1]

    def summary(self) -> str:
        """One line for the curate output: what was computed, cached, calibrated."""
        counts = self.counts
        line = (
            f"{self.key} ({self.rater.backend} {self.rater.model}): {counts['computed']} "
            f"computed, {counts['cached']} cached"
        )
        if counts["computed"]:
            line += f" ({self.seconds / counts['computed']:.3f} s per candidate)"
        if counts["unscored"]:
            line += (
                f"; warning: {counts['unscored']} unscored (no rating on the scale in the "
                "reply, even when asked again)"
            )
        parts = [f"{t}: calibrated on {n} labelled candidates" for t, n in self.calibrated.items()]
        parts += [
            f"{t}: uncalibrated ({n} labelled candidates; Platt scaling needs "
            f"{MIN_EXAMPLES_PER_CLASS} preferred and {MIN_EXAMPLES_PER_CLASS} not)"
            for t, n in self.uncalibrated.items()
        ]
        return line + ("; " + "; ".join(parts) if parts else "")
