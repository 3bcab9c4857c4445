"""Length and position bias, measured in the annotators' own votes.

Every decided two-way comparison an annotator answered (each pair of candidates of a ranking or
of a trait's ratings) becomes one row: did the candidate shown first win, and how much longer
was it? A logistic regression of the first one on the second, per trait and per annotator
(pooled over traits), separates the two shortcuts a reward model could inherit from the votes:

    logit P(first shown wins) = a + b * x,   x = log2(words of first / words of second) / sd

x is scaled but not centred, so `a` stays the position bias at equal length; `b / sd` is the
log odds ratio per doubling of length. Ties say nothing about direction: they are counted and
left out of the fit. The votes are read like agreement reads them, flagged annotators included
(a bias is a property of each annotator's answers, whatever aggregation then does with them).
Pairs from one ranking of k > 2 candidates are not independent, so the Wald intervals are a
little narrow there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from traitforge.annotators.aggregation import DropCounter, annotator_values, answers_by_task
from traitforge.annotators.records import presented_order
from traitforge.schemas import Candidate, ComparisonTask, Judgement, TraitSpec
from traitforge.schemas.results import LengthPositionFit, LengthPositionResult

# Below this many decided votes a two-parameter fit says more about chance than about bias.
MIN_VOTES = 20
Z_95 = 1.959963984540054
_NEWTON_STEPS = 100
# |coefficient| beyond this on a scaled feature means the votes are (quasi-)separated: the
# maximum-likelihood estimate runs off to infinity and its interval means nothing.
_SEPARATED = 15.0
# The model figures of a fit that could not be made.
_NO_FIT: dict[str, None] = dict.fromkeys(
    ("position", "position_ci", "length_odds_ratio", "length_odds_ratio_ci", "length_pseudo_r2")
)


@dataclass(frozen=True)
class VoteRow:
    """One annotator's answer on one pair of candidates, in the order they were shown."""

    trait: str
    annotator: str
    first_won: bool | None  # None: a tie
    log_ratio: float  # log2 of the first's words over the second's


def vote_rows(
    tasks: Iterable[ComparisonTask],
    judgements: Iterable[Judgement],
    candidates: Mapping[str, Candidate],
    traits: Sequence[TraitSpec],
    orders: Mapping[str, Sequence[str]] | None = None,
) -> list[VoteRow]:
    """A row per answered pair of candidates and trait. `orders`: task id -> candidate ids in
    the order annotators saw them (the store's presented orders); a task without one was shown
    in its deterministic shuffle (`presented_order`)."""
    orders = orders or {}
    ignored = DropCounter()  # unreadable answers are the export's to count
    answers = answers_by_task(tasks, judgements, dict(candidates), ignored)
    rows = []
    for task_id in sorted(answers):
        task, task_answers = answers[task_id]
        shown = [c for c in (orders.get(task_id) or presented_order(task)) if c in candidates]
        for trait in traits:
            if trait.name != task.trait and trait.name not in task.rated_traits:
                continue
            for judgement in sorted(task_answers, key=lambda j: j.annotator_id):
                values = annotator_values(judgement, task, trait, set(shown), ignored)
                placed = [c for c in shown if c in values]
                for first, second in combinations(placed, 2):
                    won = (
                        None if values[first] == values[second] else values[first] > values[second]
                    )
                    ratio = _words(candidates[first]) / _words(candidates[second])
                    rows.append(VoteRow(trait.name, judgement.annotator_id, won, math.log2(ratio)))
    return rows


def length_position_report(
    rows: Sequence[VoteRow], traits: Iterable[str], min_votes: int = MIN_VOTES
) -> LengthPositionResult:
    """The fit per trait in `traits` (every one, answered or not) and per annotator."""
    annotators = sorted({r.annotator for r in rows})
    result = LengthPositionResult(
        min_votes=min_votes,
        traits={t: fit_votes([r for r in rows if r.trait == t], min_votes) for t in traits},
        annotators={
            a: fit_votes([r for r in rows if r.annotator == a], min_votes) for a in annotators
        },
    )
    # The figures as files hold them (rounded): a report made now shows what one made later
    # from the stored record will.
    return LengthPositionResult.model_validate(result.model_dump(mode="json"))


def fit_votes(rows: Sequence[VoteRow], min_votes: int = MIN_VOTES) -> LengthPositionFit:
    """Position and length bias of some votes; the model figures stay None below `min_votes`
    decided votes, or where the votes allow no finite fit, and `note` says which."""
    decided = [r for r in rows if r.first_won is not None]
    unequal = [r for r in decided if r.log_ratio != 0]
    counts = {
        "votes": len(decided),
        "ties": len(rows) - len(decided),
        "first_wins": _share([r.first_won for r in decided]),
        "unequal": len(unequal),
        "longer_won": _share([r.first_won == (r.log_ratio > 0) for r in unequal]),
    }
    if len(decided) < min_votes:
        note = f"too few decided votes to fit: {len(decided)} < {min_votes}"
        return LengthPositionFit(**counts, **_NO_FIT, note=note)
    y = np.array([float(r.first_won) for r in decided])
    x = np.array([r.log_ratio for r in decided])
    if y.min() == y.max():
        side = "first" if y[0] else "second"
        note = f"every decided vote went to the {side} response shown: no finite fit"
        return LengthPositionFit(**counts, **_NO_FIT, note=note)
    null_loglik = float(len(y) * _bernoulli_loglik(float(y.mean())))
    scale = float(np.sqrt(np.mean(x**2)))  # root mean square: scales without centring
    if scale == 0:
        # Every pair had equal length: position alone, and nothing to say about length.
        fitted = _logistic(np.ones((len(y), 1)), y)
        if fitted is None:
            return LengthPositionFit(**counts, **_NO_FIT, note="the votes allow no finite fit")
        beta, cov, _ = fitted
        return LengthPositionFit(
            **counts,
            **_position(beta[0], cov[0, 0]),
            length_odds_ratio=None,
            length_odds_ratio_ci=None,
            length_pseudo_r2=None,
            note="every pair had responses of equal length: no length effect to measure",
        )
    design = np.column_stack([np.ones(len(y)), x / scale])
    fitted = _logistic(design, y)
    if fitted is None:
        note = "length or position separates the votes perfectly: no finite fit"
        return LengthPositionFit(**counts, **_NO_FIT, note=note)
    beta, cov, loglik = fitted
    slope, se = beta[1] / scale, math.sqrt(cov[1, 1]) / scale
    return LengthPositionFit(
        **counts,
        **_position(beta[0], cov[0, 0]),
        length_odds_ratio=math.exp(slope),
        length_odds_ratio_ci=_interval(math.exp(slope - Z_95 * se), math.exp(slope + Z_95 * se)),
        length_pseudo_r2=1.0 - loglik / null_loglik,
    )


def _logistic(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Maximum-likelihood logistic regression by Newton's method: (coefficients, their
    covariance, log-likelihood), or None where the estimate is not finite (separation).
    Written out rather than taken from scikit-learn, whose fits are penalized and give no
    standard errors."""
    beta = np.zeros(design.shape[1])
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        hessian = design.T @ (design * (p * (1.0 - p))[:, None])
        try:
            step = np.linalg.solve(hessian, design.T @ (y - p))
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if np.abs(beta).max() > _SEPARATED:
            return None
        if np.abs(step).max() < 1e-10:
            break
    else:
        return None
    eta = design @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    hessian = design.T @ (design * (p * (1.0 - p))[:, None])
    loglik = -float(np.sum(y * np.logaddexp(0.0, -eta) + (1.0 - y) * np.logaddexp(0.0, eta)))
    return beta, np.linalg.inv(hessian), loglik


def _position(intercept: float, variance: float) -> dict[str, object]:
    se = math.sqrt(variance)
    return {
        "position": _expit(intercept),
        "position_ci": _interval(_expit(intercept - Z_95 * se), _expit(intercept + Z_95 * se)),
    }


def _interval(low: float, high: float) -> list[float]:
    """Rounded like the figures (`Rounded`), so an export holding it stays byte-identical."""
    return [round(low, 4), round(high, 4)]


def _expit(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def _bernoulli_loglik(p: float) -> float:
    return p * math.log(p) + (1.0 - p) * math.log(1.0 - p)


def _share(flags: Sequence[bool | None]) -> float | None:
    return sum(bool(f) for f in flags) / len(flags) if flags else None


def _words(candidate: Candidate) -> int:
    """Words, as the card counts them; at least 1, so an empty response has a finite ratio."""
    return max(len(candidate.response.split()), 1)
