"""A small ensemble of preference models on frozen embeddings, for epistemic acquisition.

Each member is a linear Bradley-Terry model with a tie threshold (Rao & Kupper, 1967): with
d = w . (phi_a - phi_b), P(a wins) = sigmoid(d - t), P(b wins) = sigmoid(-d - t) and a tie takes
the rest, so ties are answers the model learns from: a pair it has learnt to call alike gets a
high tie probability, and pairs like it score low for acquisition. phi = [response, prompt *
response] on the normalized sentence embeddings curation already has (nothing is fine-tuned),
so fitting takes milliseconds. Members are fitted on bootstrap resamples of the answered
comparisons; where they disagree about a pair, an answer would teach the model something
(BALD, Houlsby et al. 2011; BAL-PM, Melo et al. 2024, fits its ensemble on frozen LLM features
the same way).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from traitforge.schemas import ComparisonTask, Judgement

FIRST, SECOND, TIE = 0, 1, 2  # outcome of a comparison, in (first, second) order
MEMBERS = 8
# L2 strength per summed answer. 1 / (2 C) with C = 0.3, the inverse strength that
# bench/active_learning.py picked for the same features on a validation split of an unused
# seed (never on test questions).
L2 = 1.0 / 0.6
MAX_THRESHOLD = 20.0


@dataclass(frozen=True)
class Comparison:
    """One annotator's answer on one candidate pair."""

    first: str
    second: str
    outcome: int  # FIRST, SECOND or TIE


def comparisons(
    tasks: Iterable[ComparisonTask], judgements: Iterable[Judgement]
) -> list[Comparison]:
    """Every pair of candidates each answer orders (or ties), from the answers' rankings.

    Rated-only answers carry no preference order here and are left out; answers to tasks
    that are no longer stored are left out too.
    """
    known = {t.id: t for t in tasks}
    out = []
    for judgement in judgements:
        task = known.get(judgement.task_id)
        if task is None or not judgement.ranking:
            continue
        ranks = {r.candidate_id: r.rank for r in judgement.ranking}
        members = [c for c in task.candidate_ids if c in ranks]
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                out.append(Comparison(a, b, _outcome(ranks[a], ranks[b])))
    return out


def _outcome(first_rank: int, second_rank: int) -> int:
    if first_rank == second_rank:
        return TIE
    return FIRST if first_rank < second_rank else SECOND


def features(prompt_vectors: np.ndarray, response_vectors: np.ndarray) -> np.ndarray:
    """phi = [response, prompt * response]: what the response says, and how it relates to
    what was asked."""
    return np.hstack([response_vectors, prompt_vectors * response_vectors]).astype(np.float64)


class PreferenceEnsemble:
    """Bootstrap members of a tie-aware linear Bradley-Terry model over candidate features."""

    def __init__(self, weights: np.ndarray, thresholds: np.ndarray) -> None:
        self.weights = weights  # (members, dimension)
        self.thresholds = thresholds  # (members,)

    @classmethod
    def fit(
        cls,
        answers: Sequence[Comparison],
        phi: Mapping[str, np.ndarray],
        members: int = MEMBERS,
        seed: int = 0,
    ) -> PreferenceEnsemble | None:
        """None when no answer names two candidates with features: nothing to learn from."""
        tally: Counter[tuple[str, str, int]] = Counter()
        for a in answers:
            if a.first in phi and a.second in phi:
                # One orientation per pair, so that (a, b, a wins) and (b, a, b wins) add up.
                if a.first <= a.second:
                    tally[(a.first, a.second, a.outcome)] += 1
                else:
                    flipped = {FIRST: SECOND, SECOND: FIRST, TIE: TIE}[a.outcome]
                    tally[(a.second, a.first, flipped)] += 1
        if not tally:
            return None
        keys = sorted(tally)
        x = np.stack([phi[a] - phi[b] for a, b, _ in keys])
        outcome = np.array([o for _, _, o in keys])
        counts = np.array([tally[k] for k in keys], dtype=np.float64)
        rng = np.random.default_rng(seed)
        z, basis = _row_space(x)
        full = _fit(z, outcome, counts, None)
        weights, thresholds = [], []
        for _ in range(members):
            # The bootstrap resamples answers: each answer is drawn Poisson(1) times.
            resampled = rng.poisson(counts).astype(np.float64)
            params = _fit(z, outcome, resampled, full) if resampled.sum() else full
            weights.append(params[:-1] @ basis)
            thresholds.append(min(float(np.exp(params[-1])), MAX_THRESHOLD))
        return cls(np.stack(weights), np.array(thresholds))

    def rewards(self, phi: np.ndarray) -> np.ndarray:
        """(candidates, members) reward of each candidate under each member."""
        return phi @ self.weights.T

    def outcome_probabilities(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """(pairs, members, 3): P(first wins), P(second wins), P(tie) per member, from the
        members' rewards of the two sides ((pairs, members) each)."""
        d = first - second
        t = self.thresholds[None, :]
        p_first = _sigmoid(d - t)
        p_second = _sigmoid(-d - t)
        p_tie = np.clip(1.0 - p_first - p_second, 0.0, 1.0)
        return np.stack([p_first, p_second, p_tie], axis=-1)


def bald(probabilities: np.ndarray) -> np.ndarray:
    """Mutual information between a pair's answer and the ensemble member, per pair: the
    entropy of the mean prediction minus the mean entropy of the members' predictions. It is
    high only where members disagree (epistemic), not where each member is unsure or expects a
    tie (aleatoric: nothing to tell)."""
    mean = probabilities.mean(axis=1)
    return np.maximum(_entropy(mean) - _entropy(probabilities).mean(axis=1), 0.0)


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=-1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _row_space(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(z, basis) with x = z @ basis. The L2 prior keeps w in x's row space, so fits run in
    its coordinates: at most one per distinct pair, often far fewer than the dimensions."""
    u, sv, vt = np.linalg.svd(x, full_matrices=False)
    keep = sv > sv[0] * 1e-9
    return u[:, keep] * sv[keep], vt[keep]


def _fit(
    z: np.ndarray,
    outcome: np.ndarray,
    counts: np.ndarray,
    start: np.ndarray | None,
) -> np.ndarray:
    """Maximum a posteriori (beta, log t) by damped Newton steps. t > 0 whenever ties were
    seen (parametrized as log t); with no tie there is no threshold to learn (t = 0)."""
    with_ties = bool((counts[outcome == TIE] > 0).any())
    params = np.zeros(z.shape[1] + 1) if start is None else start.copy()
    if not with_ties:
        params[-1] = -np.inf
    value = _objective(z, outcome, counts, params)[0]
    for _ in range(50):
        value, grad, hess = _objective(z, outcome, counts, params, derivatives=True)
        if not with_ties:
            grad, hess = grad[:-1], hess[:-1, :-1]
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = grad / (np.abs(np.diag(hess)) + L2)
        if not with_ties:
            step = np.r_[step, 0.0]
        shrink = 1.0
        for _ in range(30):  # backtracking: Newton steps on log t can overshoot
            trial = params - shrink * step
            trial_value = _objective(z, outcome, counts, trial)[0]
            if trial_value <= value:
                break
            shrink *= 0.5
        else:
            break
        params = trial
        if value - trial_value < 1e-9 * max(1.0, abs(value)):
            break
    return params


def _objective(
    z: np.ndarray,
    outcome: np.ndarray,
    counts: np.ndarray,
    params: np.ndarray,
    derivatives: bool = False,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Negative log posterior (and its gradient and Hessian) in (beta, log t)."""
    beta, tau = params[:-1], params[-1]
    t = float(np.exp(min(tau, np.log(MAX_THRESHOLD))))  # tau = -inf: no ties, t = 0
    d = z @ beta
    p_up, p_down = _sigmoid(d + t), _sigmoid(d - t)  # P(not second), P(first)
    first, second, tie = (outcome == FIRST), (outcome == SECOND), (outcome == TIE)
    p_tie = np.clip(p_up - p_down, 1e-12, 1.0)
    nll = -np.log(np.where(first, np.clip(p_down, 1e-12, 1.0), 1.0))
    nll -= np.log(np.where(second, np.clip(1.0 - p_up, 1e-12, 1.0), 1.0))
    nll -= np.log(np.where(tie, p_tie, 1.0))
    value = float(counts @ nll + 0.5 * L2 * beta @ beta)
    if not derivatives:
        return value, np.empty(0), np.empty((0, 0))
    s_up, s_down = p_up * (1 - p_up), p_down * (1 - p_down)
    c_up, c_down = s_up * (1 - 2 * p_up), s_down * (1 - 2 * p_down)
    # first: -log sigmoid(d - t); second: -log sigmoid(-d - t); tie: -log(p_up - p_down)
    g_d = np.where(first, p_down - 1, 0.0) + np.where(second, p_up, 0.0)
    g_t = np.where(first, 1 - p_down, 0.0) + np.where(second, p_up, 0.0)
    h_dd = np.where(first, s_down, 0.0) + np.where(second, s_up, 0.0)
    h_dt = np.where(first, -s_down, 0.0) + np.where(second, s_up, 0.0)
    h_tt = h_dd.copy()
    dt_d, dt_t = s_up - s_down, s_up + s_down  # d(p_tie)/dd, d(p_tie)/dt
    g_d += np.where(tie, -dt_d / p_tie, 0.0)
    g_t += np.where(tie, -dt_t / p_tie, 0.0)
    h_dd += np.where(tie, -(c_up - c_down) / p_tie + dt_d**2 / p_tie**2, 0.0)
    h_dt += np.where(tie, -(c_up + c_down) / p_tie + dt_d * dt_t / p_tie**2, 0.0)
    h_tt += np.where(tie, -(c_up - c_down) / p_tie + dt_t**2 / p_tie**2, 0.0)
    # chain rule to tau = log t
    g_tau = g_t * t
    h_dtau = h_dt * t
    h_tautau = h_tt * t * t + g_t * t
    k = z.shape[1]
    grad = np.empty(k + 1)
    grad[:k] = z.T @ (counts * g_d) + L2 * beta
    grad[k] = float(counts @ g_tau)
    hess = np.empty((k + 1, k + 1))
    hess[:k, :k] = (z * (counts * h_dd)[:, None]).T @ z + L2 * np.eye(k)
    hess[:k, k] = hess[k, :k] = z.T @ (counts * h_dtau)
    hess[k, k] = max(float(counts @ h_tautau), 1e-6)
    return value, grad, hess
