"""Active learning: held-out reward-model accuracy against labels spent, for `random` and
`uncertainty+diversity` selection.

Data: the bundled TruthfulQA (honesty; each question's true and false answers are its
candidates, gold 1/0), read by the product's source reader. Per seed, questions are split into
a pool (default 80%) and a held-out test set (20%); held-out accuracy is the pairwise accuracy
on every (true, false) answer pair of the test questions (ties count 0.5).

Reward model: a FROZEN-EMBEDDING LINEAR Bradley-Terry model, r(x) = w . phi(prompt, response)
with phi = [response, prompt * response] on normalized all-MiniLM-L6-v2 embeddings, fitted by
L2-regularized logistic regression (no intercept) on phi(chosen) - phi(rejected), both orderings;
C=0.3 was picked on a validation split inside the pool of an unused seed, never on test questions.
It is retrained at every point of every curve, which a fine-tuned transformer could not be on
a CPU; it is NOT the fine-tuned model `traitforge train` builds, so the numbers measure the
selection, not the product's reward model.

Loop per seed and strategy: the same seed set (`--start` labels picked by the product's
`random` strategy), then rounds of `--round` labels until `--labels` are spent. Each round's
comparisons come from the product's `PairSelector` (k=2, one task per prompt, no gold-check
share): `random`, or `uncertainty+diversity` fed with `Scores` whose probability is
sigmoid(z-scored reward) from the current model, as the `reward-model.v1` scorer
computes it, and the prompt embeddings. Each comparison is answered by `--annotators`
`SimulatedAnnotator`s (the product's answering logic and default biases: 5% position, 5%
length, then `--noise` random answers, else gold) and kept when a strict majority prefers one
side. Two equally true (or false) answers mostly get "tie" answers and no label; such a
comparison still counts as a label spent, because the annotators' time was spent; the share of
spent labels that were such same-gold pairs is reported per strategy.

Reported: mean and std of held-out accuracy per label count and strategy; the labels each
strategy needs (linear interpolation on the mean curve) to reach targets set between the
seed-set accuracy and the highest mean accuracy both strategies reach, and the ratio, counted
in labels spent and in usable labels; the accuracy gap paired by seed; a plot with mean +- std
bands (docs/active_learning.png unless --plot says otherwise; none with --quick).

    .venv/bin/python bench/active_learning.py --json /tmp/active_learning.json  # ~4 min, 2 CPUs
    .venv/bin/python bench/active_learning.py --quick --json /tmp/al.json  # tiny, seconds
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from traitforge.annotators.records import PREFERENCE, TIE, DatasetLayout, presented_order
from traitforge.annotators.simulated import SimulatedAnnotator
from traitforge.app.workflows import bundled_data_dir
from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.curation.selection import PairSelector, SelectionInputs
from traitforge.curation.sources import Parsed, source_format
from traitforge.reward.scorer import KEY as REWARD_SCORER
from traitforge.reward.scorer import selection_probabilities
from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    EmbeddingConfig,
    ProjectConfig,
    Scores,
    SelectionConfig,
    SimulationConfig,
    prompt_text,
)
from traitforge.workspace import default_config

TRAIT = "honesty"
STRATEGIES = ("random", "uncertainty+diversity")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PLOT = ROOT / "docs" / "active_learning.png"
TARGET_FRACTIONS = (0.5, 0.8, 0.9, 1.0)  # of the way from the seed-set accuracy to the target


@dataclass
class Data:
    """TruthfulQA candidates with their features, rows aligned with `candidates`."""

    candidates: list[Candidate]
    phi: np.ndarray  # reward-model features per candidate
    prompt_vectors: dict[str, np.ndarray]
    response_vectors: dict[str, np.ndarray]
    row: dict[str, int] = field(init=False)
    by_prompt: dict[str, list[Candidate]] = field(init=False)

    def __post_init__(self) -> None:
        self.row = {c.id: i for i, c in enumerate(self.candidates)}
        self.by_prompt = defaultdict(list)
        for c in self.candidates:
            self.by_prompt[c.prompt_id].append(c)


def load_data(questions: int | None, cache_path: Path, device: str) -> Data:
    config = default_config()
    path = bundled_data_dir() / "truthfulqa" / "TruthfulQA.csv"
    candidates = [
        c
        for o in source_format("truthfulqa").reader(path, config)
        if isinstance(o, Parsed)
        for c in o.candidates
    ]
    if questions is not None:  # every n-th question, so a subset keeps TruthfulQA's mix
        prompts = list(dict.fromkeys(c.prompt_id for c in candidates))
        keep = set(prompts[:: max(1, len(prompts) // questions)][:questions])
        candidates = [c for c in candidates if c.prompt_id in keep]
    with EmbeddingCache(cache_path) as cache:
        embedder = Embedder(EmbeddingConfig(device=device), cache)
        responses = embedder.embed([c.response for c in candidates])
        prompts = embedder.embed([prompt_text(c.prompt) for c in candidates])
    phi = np.hstack([responses, prompts * responses]).astype(np.float64)
    return Data(
        candidates,
        phi,
        prompt_vectors={c.prompt_id: prompts[i] for i, c in enumerate(candidates)},
        response_vectors={c.id: responses[i] for i, c in enumerate(candidates)},
    )


class RewardModel:
    """Linear Bradley-Terry on frozen features: P(a beats b) = sigmoid(w . (phi_a - phi_b))."""

    def __init__(self, dimension: int, c: float) -> None:
        self.w = np.zeros(dimension)
        self.c = c

    def fit(self, differences: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        if len(differences) == 0:
            self.w = np.zeros_like(self.w)
            return
        x = np.vstack([differences, -differences])
        y = np.r_[np.ones(len(differences)), np.zeros(len(differences))]
        model = LogisticRegression(C=self.c, fit_intercept=False, max_iter=2000)
        model.fit(x, y)
        self.w = model.coef_[0]

    def rewards(self, phi: np.ndarray) -> np.ndarray:
        return phi @ self.w


class Panel:
    """Simulated annotators answering one comparison each; a strict majority makes a label."""

    def __init__(self, size: int, config: SimulationConfig, project: ProjectConfig) -> None:
        traits = {t.name: t for t in project.traits}
        self.annotators = [SimulatedAnnotator(f"sim-{i + 1}", config, traits) for i in range(size)]
        self.layout = DatasetLayout("active-learning", TRAIT, 2, (TRAIT,))

    def label(
        self, task: ComparisonTask, candidates: dict[str, Candidate]
    ) -> tuple[str, str] | None:
        """(chosen id, rejected id), or None when no side has a strict majority."""
        order = presented_order(task)
        votes: Counter[str] = Counter()
        for annotator in self.annotators:
            values, _ = annotator.answer(task, order, candidates, self.layout)
            votes[values[PREFERENCE]["value"]] += 1
        winner, count = votes.most_common(1)[0]
        if winner == TIE or count * 2 <= len(self.annotators):
            return None
        first, second = order if winner == "A" else order[::-1]
        return first, second


@dataclass
class Settings:
    seeds: int
    labels: int
    start: int
    round: int
    annotators: int
    noise: float
    test_share: float
    c: float


def split(data: Data, share: float, seed: int) -> tuple[list[str], list[str]]:
    prompts = sorted(data.by_prompt)
    random.Random(seed).shuffle(prompts)
    n_test = round(len(prompts) * share)
    return prompts[n_test:], prompts[:n_test]


def gold_pairs(data: Data, prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of every (true, false) answer pair of these prompts."""
    chosen, rejected = [], []
    for p in prompts:
        members = data.by_prompt[p]
        for a, b in product(members, members):
            if a.gold[TRAIT] > b.gold[TRAIT]:
                chosen.append(data.row[a.id])
                rejected.append(data.row[b.id])
    return np.array(chosen, dtype=int), np.array(rejected, dtype=int)


def accuracy(model: RewardModel, data: Data, pairs: tuple[np.ndarray, np.ndarray]) -> float:
    rewards = model.rewards(data.phi)
    c, r = rewards[pairs[0]], rewards[pairs[1]]
    return float(np.mean(np.where(c > r, 1.0, np.where(c < r, 0.0, 0.5))))


def reward_scores(model: RewardModel, data: Data, pool: list[Candidate]) -> list[Scores]:
    """What `reward-model.v1` gives selection: the same probabilities, from the same code."""
    values = model.rewards(data.phi[[data.row[c.id] for c in pool]])
    probabilities = selection_probabilities(values)
    return [
        Scores(
            candidate_id=c.id,
            scorer=REWARD_SCORER,
            trait=TRAIT,
            score=float(v),
            probability=float(p),
        )
        for c, v, p in zip(pool, values, probabilities, strict=True)
    ]


def selector(project: ProjectConfig, strategy: str, seed: int) -> PairSelector:
    selection = SelectionConfig(
        strategy=strategy, k=2, gold_fraction=0.0, tasks_per_prompt=1, seed=seed
    )
    curation = project.curation.model_copy(update={"selection": selection})
    return PairSelector(project.model_copy(update={"curation": curation}))


def run_curve(
    data: Data, settings: Settings, strategy: str, seed: int, project: ProjectConfig
) -> dict[str, Any]:
    pool_prompts, test_prompts = split(data, settings.test_share, seed)
    pool = [c for p in pool_prompts for c in data.by_prompt[p]]
    test = gold_pairs(data, test_prompts)
    by_id = {c.id: c for c in data.candidates}
    panel = Panel(settings.annotators, SimulationConfig(noise=settings.noise, seed=seed), project)
    model = RewardModel(data.phi.shape[1], settings.c)
    tasks: list[ComparisonTask] = []
    differences: list[np.ndarray] = []
    no_majority = wrong = 0
    points = []
    round_ = 0
    while len(tasks) < settings.labels:
        size = settings.start if round_ == 0 else settings.round
        budget = min(size, settings.labels - len(tasks))
        # the seed set is the same random draw for every strategy
        chooser = selector(project, "random" if round_ == 0 else strategy, seed)
        inputs = SelectionInputs(
            candidates=pool,
            scores=reward_scores(model, data, pool) if round_ else [],
            prompt_vectors=data.prompt_vectors,
            response_vectors=data.response_vectors,
            existing=tasks,
        )
        new = chooser.process(inputs, budget, round_)
        if not new:
            break  # pool exhausted
        for task in new:
            tasks.append(task)
            label = panel.label(task, by_id)
            if label is None:
                no_majority += 1
                continue
            chosen, rejected = (by_id[i] for i in label)
            wrong += chosen.gold[TRAIT] < rejected.gold[TRAIT]
            differences.append(data.phi[data.row[chosen.id]] - data.phi[data.row[rejected.id]])
        model.fit(np.array(differences))
        same_gold = sum(len({by_id[c].gold[TRAIT] for c in t.candidate_ids}) == 1 for t in tasks)
        points.append(
            {
                "labels": len(tasks),
                "usable": len(differences),
                "no_majority": no_majority,
                "same_gold": same_gold,
                "wrong": int(wrong),
                "accuracy": accuracy(model, data, test),
            }
        )
        round_ += 1
    return {"seed": seed, "strategy": strategy, "test_pairs": len(test[0]), "points": points}


def ceiling(data: Data, settings: Settings, seed: int) -> float:
    """Held-out accuracy of the same model trained on every gold pair of the pool."""
    pool_prompts, test_prompts = split(data, settings.test_share, seed)
    chosen, rejected = gold_pairs(data, pool_prompts)
    model = RewardModel(data.phi.shape[1], settings.c)
    model.fit(data.phi[chosen] - data.phi[rejected])
    return accuracy(model, data, gold_pairs(data, test_prompts))


def labels_to_reach(labels: list[int], means: list[float], target: float) -> float | None:
    """First crossing of `target` by the mean curve, linearly interpolated; None if never."""
    for i, value in enumerate(means):
        if value >= target:
            if i == 0:
                return float(labels[0])
            before = means[i - 1]
            share = (target - before) / (value - before)
            return labels[i - 1] + share * (labels[i] - labels[i - 1])
    return None


def summarize(curves: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for strategy in STRATEGIES:
        runs = [c["points"] for c in curves if c["strategy"] == strategy]
        length = min(len(r) for r in runs)
        rows = []
        for i in range(length):
            at = [r[i] for r in runs]
            spent = at[0]["labels"]
            rows.append(
                {
                    "labels": spent,
                    "accuracy_mean": statistics.fmean(p["accuracy"] for p in at),
                    "accuracy_std": statistics.pstdev(p["accuracy"] for p in at),
                    "usable_mean": statistics.fmean(p["usable"] for p in at),
                    "same_gold_share": statistics.fmean(p["same_gold"] / spent for p in at),
                    "no_majority_share": statistics.fmean(p["no_majority"] / spent for p in at),
                    "wrong_share_of_usable": statistics.fmean(
                        p["wrong"] / max(p["usable"], 1) for p in at
                    ),
                }
            )
        summary[strategy] = rows
    return summary


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    """Labels each strategy needs to reach accuracies between the seed-set accuracy and the
    highest mean accuracy both strategies reach within the budget: labels spent (the headline)
    and usable labels (whether the labels that did count were more informative)."""
    means = {s: [r["accuracy_mean"] for r in rows] for s, rows in summary.items()}
    axes = {
        "labels": {s: [r["labels"] for r in rows] for s, rows in summary.items()},
        "usable": {s: [r["usable_mean"] for r in rows] for s, rows in summary.items()},
    }
    start = statistics.fmean(means[s][0] for s in STRATEGIES)
    common = min(max(means[s]) for s in STRATEGIES)
    out = []
    for fraction in TARGET_FRACTIONS:
        target = start + fraction * (common - start)
        level: dict[str, Any] = {"fraction": fraction, "target_accuracy": target}
        for axis, x in axes.items():
            needed = {s: labels_to_reach(x[s], means[s], target) for s in STRATEGIES}
            random_n, ud_n = needed["random"], needed["uncertainty+diversity"]
            ratio = ud_n / random_n if random_n and ud_n else None
            level[axis] = {
                **needed,
                "ratio": ratio,
                "fewer": None if ratio is None else 1.0 - ratio,
            }
        out.append(level)
    return {"seed_set_accuracy": start, "highest_common_accuracy": common, "levels": out}


def paired_gap(curves: list[dict[str, Any]]) -> dict[str, float]:
    """Per seed, u+d minus random accuracy averaged over label counts after the seed set
    (same split, seed set and annotators on both sides); mean and standard error over seeds."""
    by_seed: dict[int, dict[str, list[float]]] = defaultdict(dict)
    for c in curves:
        by_seed[c["seed"]][c["strategy"]] = [p["accuracy"] for p in c["points"][1:]]
    gaps = []
    for runs in by_seed.values():
        n = min(len(runs[s]) for s in STRATEGIES)
        gaps.append(
            statistics.fmean(
                u - r
                for u, r in zip(runs["uncertainty+diversity"][:n], runs["random"][:n], strict=True)
            )
        )
    spread = statistics.stdev(gaps) / len(gaps) ** 0.5 if len(gaps) > 1 else 0.0
    return {"mean": statistics.fmean(gaps), "stderr": spread, "seeds": len(gaps)}


def plot(
    summary: dict[str, Any],
    reached: dict[str, Any],
    ceilings: list[float],
    settings: Settings,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (spent, usable, same) = plt.subplots(
        1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [3, 2, 2]}
    )
    for strategy, colour in zip(STRATEGIES, ("tab:gray", "tab:blue"), strict=True):
        rows = summary[strategy]
        x = np.array([r["labels"] for r in rows])
        mean = np.array([r["accuracy_mean"] for r in rows])
        std = np.array([r["accuracy_std"] for r in rows])
        spent.plot(x, mean, color=colour, label=strategy)
        spent.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2)
        usable.plot([r["usable_mean"] for r in rows], mean, color=colour, label=strategy)
        same.plot(x, [r["same_gold_share"] for r in rows], color=colour, label=strategy)
    spent.axhline(
        reached["highest_common_accuracy"],
        color="tab:red",
        ls=":",
        lw=1,
        label="highest mean accuracy both reach",
    )
    spent.axhline(
        statistics.fmean(ceilings), color="black", ls="--", lw=1, label="trained on all pool gold"
    )
    spent.set_xlabel(f"labels spent (comparisons, {settings.annotators} simulated annotators each)")
    spent.set_ylabel("held-out pairwise accuracy")
    spent.set_title(
        f"Frozen-MiniLM linear reward model, TruthfulQA\nmean ± std over {settings.seeds} seeds"
    )
    spent.legend(loc="lower right")
    usable.set_xlabel("usable labels (a strict majority preferred one side)")
    usable.set_title("The same mean curves against usable labels")
    usable.legend(loc="lower right")
    same.set_xlabel("labels spent")
    same.set_ylabel("share of comparisons so far")
    same.set_title("Share of same-gold comparisons (mostly no label)")
    same.set_ylim(0, 1)
    same.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(
    summary: dict[str, Any], reached: dict[str, Any], ceilings: list[float], gap: dict[str, float]
) -> None:
    print("\nheld-out pairwise accuracy, mean (std) over seeds")
    header = f"{'labels':>7}"
    for s in STRATEGIES:
        header += f"{s:>28}{'same-gold':>11}{'usable':>8}"
    print(header)
    for rows in zip(*(summary[s] for s in STRATEGIES), strict=False):
        line = f"{rows[0]['labels']:>7}"
        for r in rows:
            cell = f"{r['accuracy_mean']:.4f} ({r['accuracy_std']:.4f})"
            line += f"{cell:>28}{r['same_gold_share']:>10.0%} {r['usable_mean']:>8.1f}"
        print(line)
    print(
        f"\nseed-set accuracy {reached['seed_set_accuracy']:.4f}; highest mean accuracy both "
        f"reach {reached['highest_common_accuracy']:.4f}; same model on every gold pool pair "
        f"{statistics.fmean(ceilings):.4f}"
    )
    print(
        "\nlabels needed to reach a target between the seed-set accuracy (0%) and the highest "
        "mean accuracy both reach (100%), interpolated on the mean curves"
    )

    def fmt(v: float | None, spec: str) -> str:
        return "never" if v is None else format(v, spec)

    print(
        f"{'target':>7}{'accuracy':>10} | {'spent: random':>14}{'u+d':>7}{'ratio':>7}{'fewer':>7}"
        f" | {'usable: random':>15}{'u+d':>7}{'ratio':>7}{'fewer':>7}"
    )
    for level in reached["levels"]:
        line = f"{level['fraction']:>7.0%}{level['target_accuracy']:>10.4f}"
        for axis, width in (("labels", 14), ("usable", 15)):
            n = level[axis]
            line += (
                f" | {fmt(n['random'], '.0f'):>{width}}{fmt(n['uncertainty+diversity'], '.0f'):>7}"
                f"{fmt(n['ratio'], '.2f'):>7}{fmt(n['fewer'], '.0%'):>7}"
            )
        print(line)
    print(
        f"u+d minus random accuracy, averaged over the curve, paired by seed: "
        f"{gap['mean']:+.4f} (standard error {gap['stderr']:.4f}, {gap['seeds']} seeds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--labels", type=int, default=400, help="labels spent per curve")
    parser.add_argument("--start", type=int, default=20, help="random seed-set labels")
    parser.add_argument("--round", type=int, default=20, help="labels selected per round")
    parser.add_argument("--annotators", type=int, default=3, help="simulated, per comparison")
    parser.add_argument("--noise", type=float, default=0.1, help="annotators' random answers")
    parser.add_argument("--test-share", type=float, default=0.2, help="held-out questions")
    parser.add_argument("--c", type=float, default=0.3, help="inverse L2 strength")
    parser.add_argument("--questions", type=int, default=None, help="subset of TruthfulQA")
    parser.add_argument("--quick", action="store_true", help="tiny run: 120 questions, 2 seeds")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help=f"default {DEFAULT_PLOT}")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "traitforge-bench-embeddings.sqlite",
        help="embedding cache (SQLite), reused between runs",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    if args.quick:
        args.questions = args.questions or 120
        args.seeds, args.labels, args.start, args.round = 2, 60, 20, 20
    plot_path = args.plot or (None if args.quick else DEFAULT_PLOT)
    settings = Settings(
        seeds=args.seeds,
        labels=args.labels,
        start=args.start,
        round=args.round,
        annotators=args.annotators,
        noise=args.noise,
        test_share=args.test_share,
        c=args.c,
    )
    began = time.perf_counter()
    data = load_data(args.questions, args.cache, args.device)
    embedded = time.perf_counter() - began
    print(
        f"TruthfulQA: {len(data.by_prompt)} questions, {len(data.candidates)} answers; "
        f"embedded in {embedded:.1f}s. Reward model: linear Bradley-Terry on frozen MiniLM "
        f"embeddings (not the fine-tuned `traitforge train` model), C={settings.c}."
    )
    project = default_config()
    curves, ceilings = [], []
    for seed in range(settings.seeds):
        ceilings.append(ceiling(data, settings, seed))
        for strategy in STRATEGIES:
            curves.append(run_curve(data, settings, strategy, seed, project))
        print(f"seed {seed} done, {time.perf_counter() - began:.0f}s", flush=True)
    summary = summarize(curves)
    reached = targets(summary)
    gap = paired_gap(curves)
    report(summary, reached, ceilings, gap)
    seconds = time.perf_counter() - began
    print(f"\nwall time {seconds:.0f}s")
    if plot_path:
        plot(summary, reached, ceilings, settings, plot_path)
        print(f"plot: {plot_path}")
    if args.json:
        result = {
            "settings": vars(settings),
            "reward_model": "linear Bradley-Terry on frozen all-MiniLM-L6-v2 embeddings, "
            "phi = [response, prompt * response]; not the fine-tuned traitforge model",
            "questions": len(data.by_prompt),
            "answers": len(data.candidates),
            "ceiling_all_gold_pool_pairs": ceilings,
            "summary": summary,
            "targets": reached,
            "paired_gap": gap,
            "curves": curves,
            "seconds": seconds,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
