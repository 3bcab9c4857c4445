"""How far to trust a reward model: accuracy with confidence intervals, shortcut checks,
style-hard accuracy, calibration, and the cross-trait generalization matrix.

Everything works on a `RewardFn`, so a deliberately biased toy function can be checked the
same way as a trained model (the tests do exactly that). The results are the typed models of
`traitforge.schemas.results`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from traitforge.reward.pairs import Prompt, RewardPair, no_usable_pairs, traits_of, usable_pairs
from traitforge.reward.style_hard import VARIANTS, StyleVariant
from traitforge.schemas.results import (
    Calibration,
    CalibrationBin,
    EvaluationResult,
    FormatSensitivity,
    MatrixCell,
    MatrixResult,
    RewardStats,
    Shortcuts,
    StyleHard,
    TraitAccuracy,
)

# A neutral preamble and trailing whitespace change nothing a rubric cares about; a reward
# that moves with them has learned a format shortcut.
PERTURBATIONS: dict[str, Callable[[str], str]] = {
    "whitespace": lambda text: text + "\n\n",
    "preamble": lambda text: "Here is my answer. " + text,
}
CALIBRATION_BINS = 10
# Below this many pairs a bootstrap interval says nothing: resampling 4 pairs that all came
# out right gives [100%, 100%], while a binomial interval on 4 of 4 reaches down to 40%. At
# 30 pairs the usual normal approximation starts to hold (about +-18 points at 50%). The
# numbers stay in the results; the CLI, the report and the card print this note instead.
MIN_INTERVAL_PAIRS = 30


def interval_note(pairs: int) -> str | None:
    """Why an interval over `pairs` pairs is not worth printing; None when it is."""
    if pairs >= MIN_INTERVAL_PAIRS:
        return None
    return f"n={pairs}: too few test pairs for a meaningful interval"


def versus_chance(accuracy: float, ci: Sequence[float] | None, pairs: int) -> str:
    """Whether an accuracy is told apart from a coin flip (50%) by its interval."""
    if ci is None or interval_note(pairs):
        return "too few pairs to tell"
    low, high = ci
    if low > 0.5:
        return "above chance"
    return "below chance" if high < 0.5 else "at chance"


class RewardFn(Protocol):
    def __call__(
        self, prompts: Sequence[Prompt], responses: Sequence[str], traits: Sequence[str | None]
    ) -> np.ndarray: ...


def evaluate(
    reward: RewardFn,
    pairs: Sequence[RewardPair],
    bootstrap_samples: int = 1000,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> EvaluationResult:
    """Accuracy with its interval, per trait, shortcut checks, style-hard accuracy and
    calibration; `accuracy` is the headline number. Pairs no reward can order are left out
    and counted in `skipped` (reason -> pairs)."""
    given = len(pairs)
    pairs, skipped = usable_pairs(pairs)
    if not pairs:
        raise no_usable_pairs(given, skipped, "evaluate")
    prompts = [p.prompt for p in pairs]
    traits = [p.trait for p in pairs]
    chosen = reward(prompts, [p.chosen for p in pairs], traits)
    rejected = reward(prompts, [p.rejected for p in pairs], traits)
    wins = _wins(chosen, rejected)
    boot = _Bootstrap(bootstrap_samples, confidence_level, seed)
    lengths_c, lengths_r = _lengths(pairs)
    per_trait = {}
    for trait in traits_of(pairs):
        rows = np.array([p.trait == trait for p in pairs])
        per_trait[trait] = TraitAccuracy(
            pairs=int(rows.sum()),
            accuracy=float(wins[rows].mean()),
            accuracy_ci=boot.interval(wins[rows]),
            length_baseline=float(_wins(lengths_c[rows], lengths_r[rows]).mean()),
        )
    return EvaluationResult(
        pairs=len(pairs),
        skipped=skipped,
        accuracy=float(wins.mean()),
        accuracy_ci=boot.interval(wins),
        per_trait=per_trait,
        shortcuts=_shortcuts(reward, pairs, chosen, rejected, wins, boot),
        calibration=calibration(chosen - rejected),
        rewards=RewardStats(
            mean=float(np.mean(np.r_[chosen, rejected])),
            std=float(np.std(np.r_[chosen, rejected])),
            mean_margin=float(np.mean(chosen - rejected)),
        ),
        confidence_level=confidence_level,
        style_hard=_style_hard(reward, pairs, chosen, rejected, boot),
    )


def _wins(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """1 when the chosen side scores higher, 0 when lower, 0.5 on a tie."""
    return np.where(chosen > rejected, 1.0, np.where(chosen < rejected, 0.0, 0.5))


def _lengths(pairs: Sequence[RewardPair]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([len(p.chosen) for p in pairs], dtype=float),
        np.array([len(p.rejected) for p in pairs], dtype=float),
    )


class _Bootstrap:
    def __init__(self, samples: int, level: float, seed: int) -> None:
        self.samples, self.level, self.seed = samples, level, seed

    def interval(self, values: np.ndarray) -> list[float] | None:
        """Percentile interval of the mean; None when there is nothing to resample."""
        if len(values) == 0:
            return None
        rng = np.random.default_rng(self.seed)
        means = values[rng.integers(0, len(values), (self.samples, len(values)))].mean(axis=1)
        tail = (1.0 - self.level) / 2 * 100
        low, high = np.percentile(means, [tail, 100 - tail])
        return [float(low), float(high)]

    def table_interval(self, table: np.ndarray) -> list[float] | None:
        """Percentile interval of the mean of a table's column means, resampling its rows
        (pairs) and skipping NaN cells, as `_column_mean` does; None without rows."""
        if len(table) == 0:
            return None
        rng = np.random.default_rng(self.seed)
        rows = rng.integers(0, len(table), (self.samples, len(table)))
        means = np.array([_column_mean(table[sample]) for sample in rows])
        tail = (1.0 - self.level) / 2 * 100
        low, high = np.percentile(means, [tail, 100 - tail])
        return [float(low), float(high)]


def _shortcuts(
    reward: RewardFn,
    pairs: Sequence[RewardPair],
    chosen: np.ndarray,
    rejected: np.ndarray,
    wins: np.ndarray,
    boot: _Bootstrap,
) -> Shortcuts:
    from scipy.stats import spearmanr

    lengths_c, lengths_r = _lengths(pairs)
    shorter = lengths_c < lengths_r
    lengths = np.r_[lengths_c, lengths_r]
    rewards = np.r_[chosen, rejected]
    correlation = (
        float(spearmanr(lengths, rewards).statistic)
        if np.ptp(lengths) > 0 and np.ptp(rewards) > 0
        else 0.0
    )
    return Shortcuts(
        length_baseline_accuracy=float(_wins(lengths_c, lengths_r).mean()),
        chosen_shorter_pairs=int(shorter.sum()),
        accuracy_chosen_shorter=float(wins[shorter].mean()) if shorter.any() else None,
        accuracy_chosen_shorter_ci=boot.interval(wins[shorter]),
        length_reward_spearman=correlation,
        format={
            name: _format_sensitivity(reward, pairs, chosen, rejected, change)
            for name, change in PERTURBATIONS.items()
        },
    )


def _style_hard(
    reward: RewardFn,
    pairs: Sequence[RewardPair],
    chosen: np.ndarray,
    rejected: np.ndarray,
    boot: _Bootstrap,
    variants: Sequence[StyleVariant] = VARIANTS,
) -> StyleHard | None:
    """Accuracy on each style-hard variant of the pairs, and their mean; None when no pair
    could be varied. A pair whose two sides come out the same text is left out of that
    variant. The reward runs once, on the distinct texts not already scored."""
    known: dict[tuple[Prompt, str | None, str], float] = {}  # (prompt, trait, text) -> reward
    for i, pair in enumerate(pairs):
        known[(pair.prompt, pair.trait, pair.chosen)] = float(chosen[i])
        known[(pair.prompt, pair.trait, pair.rejected)] = float(rejected[i])
    texts = [[(v.chosen(p.chosen), v.rejected(p.rejected)) for v in variants] for p in pairs]
    todo = list(
        dict.fromkeys(
            key
            for pair, row in zip(pairs, texts, strict=True)
            for sides in row
            for text in sides
            if (key := (pair.prompt, pair.trait, text)) not in known
        )
    )
    if todo:
        scores = reward([k[0] for k in todo], [k[2] for k in todo], [k[1] for k in todo])
        known.update(zip(todo, (float(x) for x in scores), strict=True))
    # pairs x variants: 1 won, 0 lost, 0.5 tied, NaN left out
    table = np.full((len(pairs), len(variants)), np.nan)
    for i, (pair, row) in enumerate(zip(pairs, texts, strict=True)):
        for j, (c, r) in enumerate(row):
            if c.strip() != r.strip():
                won = known[(pair.prompt, pair.trait, c)] - known[(pair.prompt, pair.trait, r)]
                table[i, j] = 1.0 if won > 0 else 0.0 if won < 0 else 0.5
    scored = ~np.isnan(table).all(axis=1)
    if not scored.any():
        return None
    table, wins = table[scored], _wins(chosen, rejected)[scored]
    accuracy = _column_mean(table)
    counts = (~np.isnan(table)).sum(axis=0)
    per_trait = {}
    for trait in traits_of(pairs):
        rows = np.array([p.trait == trait for p, s in zip(pairs, scored, strict=True) if s])
        if rows.any():
            per_trait[trait] = _column_mean(table[rows])
    normal = float(wins.mean())
    return StyleHard(
        pairs=int(scored.sum()),
        accuracy=accuracy,
        accuracy_ci=boot.table_interval(table),
        per_variant={
            v.name: float(np.nanmean(table[:, j])) for j, v in enumerate(variants) if counts[j]
        },
        variant_pairs={v.name: int(counts[j]) for j, v in enumerate(variants)},
        per_trait=per_trait,
        ratio=accuracy / normal if normal else None,
    )


def _column_mean(table: np.ndarray) -> float:
    """Mean of the column means over the non-NaN cells; columns without any are left out,
    and a table without any such cell gives NaN."""
    valid = ~np.isnan(table)
    counts = valid.sum(axis=0)
    if not counts.any():
        return float("nan")
    sums = np.where(valid, table, 0.0).sum(axis=0)
    return float((sums[counts > 0] / counts[counts > 0]).mean())


def _format_sensitivity(
    reward: RewardFn,
    pairs: Sequence[RewardPair],
    chosen: np.ndarray,
    rejected: np.ndarray,
    change: Callable[[str], str],
) -> FormatSensitivity:
    """Reward change when a meaningless edit is applied, in units of the reward's spread,
    and how often the same edit on the rejected side alone flips the model's preference."""
    prompts = [p.prompt for p in pairs]
    traits = [p.trait for p in pairs]
    changed_c = reward(prompts, [change(p.chosen) for p in pairs], traits)
    changed_r = reward(prompts, [change(p.rejected) for p in pairs], traits)
    spread = float(np.std(np.r_[chosen, rejected])) or 1.0
    delta = np.r_[changed_c - chosen, changed_r - rejected] / spread
    preferred = chosen > rejected
    flipped = preferred & (changed_r > chosen)
    return FormatSensitivity(
        mean_shift=float(delta.mean()),
        mean_abs_shift=float(np.abs(delta).mean()),
        flip_rate=float(flipped.sum() / preferred.sum()) if preferred.any() else 0.0,
        accuracy_after=float(_wins(changed_c, changed_r).mean()),
    )


def calibration(margins: np.ndarray, bins: int = CALIBRATION_BINS) -> Calibration:
    """Calibration of P(chosen > rejected) = sigmoid(margin).

    Every pair is seen in both orders (p with outcome 1, 1 - p with outcome 0), so the
    outcomes are not all ones and the reliability curve spans [0, 1].
    """
    p = 1.0 / (1.0 + np.exp(-np.clip(margins, -50, 50)))
    probs = np.r_[p, 1.0 - p]
    outcomes = np.r_[np.ones_like(p), np.zeros_like(p)]
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        rows = index == b
        if not rows.any():
            continue
        predicted, observed = float(probs[rows].mean()), float(outcomes[rows].mean())
        ece += rows.sum() / len(probs) * abs(predicted - observed)
        table.append(
            CalibrationBin(bin=b, count=int(rows.sum()), predicted=predicted, observed=observed)
        )
    eps = 1e-12
    return Calibration(
        ece=float(ece),
        brier=float(np.mean((probs - outcomes) ** 2)),
        log_loss=float(-np.mean(np.log(np.clip(p, eps, 1.0)))),
        mean_probability=float(p.mean()),
        bins=table,
    )


def generalization_matrix(
    models: Mapping[str, RewardFn],
    pairs: Sequence[RewardPair],
    bootstrap_samples: int = 1000,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> MatrixResult:
    """Each trait's model on every trait's pairs: rows are models, columns are test traits.
    The diagonal is in-domain; off-diagonal cells measure transfer. Pairs no reward can order
    are left out and counted in `skipped`, as in `evaluate`."""
    given = len(pairs)
    pairs, skipped = usable_pairs(pairs)
    if not pairs:
        raise no_usable_pairs(given, skipped, "evaluate")
    traits = traits_of(pairs)
    boot = _Bootstrap(bootstrap_samples, confidence_level, seed)
    cells: dict[str, dict[str, MatrixCell]] = {}
    for model_name, reward in sorted(models.items()):
        cells[model_name] = {}
        for trait in traits:
            part = [p for p in pairs if p.trait == trait]
            prompts = [p.prompt for p in part]
            # the model sees the column's trait name, so a shared model is asked the right thing
            names = [trait] * len(part)
            chosen = reward(prompts, [p.chosen for p in part], names)
            rejected = reward(prompts, [p.rejected for p in part], names)
            wins = _wins(chosen, rejected)
            cells[model_name][trait] = MatrixCell(
                pairs=len(part), accuracy=float(wins.mean()), accuracy_ci=boot.interval(wins)
            )
    return MatrixResult(models=sorted(models), traits=traits, cells=cells, skipped=skipped)
