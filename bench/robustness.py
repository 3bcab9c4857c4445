"""Does counterfactual augmentation remove the shortcuts? Reward models trained with and
without each `reward.augment` kind, side by side, on data they never saw.

Training data: the bundled gold export the product builds (TruthfulQA for honesty and
corrigible-neutral-HHH for corrigibility, ingested into a temporary workspace and exported
with the default config), its train split subsampled to `--limit` pairs per trait (seeded) so
that a CPU run takes minutes. Every variant trains on exactly those pairs, with the same
config and seed; only `reward.augment` differs. Each run is a per-trait set plus the shared
model of `reward.shared_row`, for the matrix's shared row.

Evaluation sets, none of them trained on:
- `test`: the export's own test split (both traits);
- `honesty-new`: the test split's TruthfulQA questions with *other* answers from the csv (a
  correct answer that is not the exported chosen one against an incorrect one that is not the
  exported rejected one): new answers to held-out questions;
- `corrigibility-more`: corrigible-more-HHH, another file of the trait, exported the same way.

Per variant and set: accuracy, the preamble flip rate (evaluation.PERTURBATIONS: adding
"Here is my answer." to the rejected side flips the model's preference) and the preamble's
mean reward shift in units of the reward's spread (near 0: the edit does not matter; below 0:
the model learned that edits lose, which is no better), style-hard accuracy
(reward/style_hard.py) and its ratio to accuracy, and the reward-length Spearman correlation;
then the matrix of every model (per-trait and shared) on the test split. The evaluation's
wording is never the augmentation's (tests/unit/test_reward_augment.py checks it).

Goals (issue 14): preamble flip <= 5% on every set with accuracy within 1 point of the
unaugmented model; style-hard accuracy >= 0.8 x accuracy; no cell of the shared row below 45%.

    .venv/bin/python bench/robustness.py                      # 2 CPU cores, MiniLM, ~25 min
    .venv/bin/python bench/robustness.py --limit 60 --variants none,style   # a quick look
    .venv/bin/python bench/robustness.py --backbone SmolLM2-135M-Instruct --limit 0  # GPU
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from traitforge.app.workflows import bundled_data_dir, export, ingest
from traitforge.reward.evaluation import evaluate, generalization_matrix
from traitforge.reward.model import RewardModelSet
from traitforge.reward.pairs import RewardPair, load_splits
from traitforge.reward.runs import train_run
from traitforge.reward.training import SHARED
from traitforge.schemas import EvaluationResult, RewardConfig
from traitforge.workspace import Workspace

VARIANTS: dict[str, list[str]] = {
    "none": [],
    "cross-prompt": ["cross-prompt"],
    "style": ["style"],
    "both": ["cross-prompt", "style"],
}
GOAL_FLIP = 0.05
GOAL_ACCURACY_DROP = 0.01
GOAL_STYLE_RATIO = 0.8
GOAL_MATRIX_CELL = 0.45
TRAIN_FILES = ("truthfulqa/TruthfulQA.csv", "anthropic-evals/corrigible-neutral-HHH.jsonl")
HELD_OUT_FILE = "anthropic-evals/corrigible-more-HHH.jsonl"


def exported_splits(folder: Path, files: Sequence[str]) -> dict[str, list[RewardPair]]:
    """The bundled files, ingested and exported as the product does it."""
    workspace = Workspace.open(folder)
    for name in files:
        fmt = "truthfulqa" if name.startswith("truthfulqa") else "anthropic-evals"
        ingest(workspace, fmt, [bundled_data_dir() / name])
    return load_splits(export(workspace).out)


def honesty_new_answers(test: Sequence[RewardPair]) -> list[RewardPair]:
    """Held-out TruthfulQA questions, each with a correct and an incorrect answer that are
    not the exported pair's sides."""
    path = bundled_data_dir() / "truthfulqa" / "TruthfulQA.csv"
    with path.open(encoding="utf-8-sig") as f:
        rows = {r["Question"].strip(): r for r in csv.DictReader(f)}
    pairs = []
    for pair in test:
        row = rows.get(pair.prompt.strip()) if isinstance(pair.prompt, str) else None
        if pair.trait != "honesty" or row is None:
            continue
        used = {pair.chosen.strip(), pair.rejected.strip()}
        correct = [a for a in _answers(row["Correct Answers"]) if a not in used]
        incorrect = [a for a in _answers(row["Incorrect Answers"]) if a not in used]
        if correct and incorrect:
            pairs.append(RewardPair(pair.prompt, correct[0], incorrect[0], "honesty"))
    return pairs


def _answers(cell: str) -> list[str]:
    return [a.strip() for a in cell.split(";") if a.strip()]


def subsample(pairs: Sequence[RewardPair], limit: int, seed: int) -> list[RewardPair]:
    """At most `limit` pairs per trait (0: all), the same ones for every variant."""
    if not limit:
        return list(pairs)
    out = []
    for trait in sorted({p.trait or "" for p in pairs}):
        members = sorted(
            (p for p in pairs if (p.trait or "") == trait), key=lambda p: p.pair_id or ""
        )
        random.Random(seed).shuffle(members)
        out += members[:limit]
    return out


def save(folder: Path, splits: dict[str, list[RewardPair]]) -> Path:
    from datasets import Dataset, DatasetDict

    def columns(pairs: list[RewardPair]) -> dict[str, list[Any]]:
        return {
            "prompt": [p.prompt for p in pairs],
            "chosen": [p.chosen for p in pairs],
            "rejected": [p.rejected for p in pairs],
            "trait": [p.trait for p in pairs],
            "pair_id": [p.pair_id for p in pairs],
        }

    DatasetDict({k: Dataset.from_dict(columns(v)) for k, v in splits.items()}).save_to_disk(
        str(folder)
    )
    return folder


def measures(evaluation: EvaluationResult) -> dict[str, float | None]:
    style = evaluation.style_hard
    return {
        "pairs": evaluation.pairs,
        "accuracy": evaluation.accuracy,
        "preamble_flip": evaluation.shortcuts.format["preamble"].flip_rate,
        # a model taught "edits lose" instead of "edits do not matter" moves down here
        "preamble_shift": evaluation.shortcuts.format["preamble"].mean_shift,
        "style_hard": style.accuracy if style else None,
        "style_ratio": style.ratio if style else None,
        "length_spearman": evaluation.shortcuts.length_reward_spearman,
    }


def run_variant(
    name: str,
    kinds: list[str],
    data: Path,
    root: Path,
    config: RewardConfig,
    sets: dict[str, list[RewardPair]],
) -> dict[str, Any]:
    out = root / f"models-{name}"
    started = time.perf_counter()
    run = train_run(data, out, config.model_copy(update={"augment": kinds}), log=lambda line: None)
    seconds = time.perf_counter() - started
    models = RewardModelSet(out)
    shared = models.shared_row()
    results: dict[str, Any] = {
        "augment": kinds,
        "train_seconds": round(seconds, 1),
        "train_pairs": {f.name: f.pairs for f in run.fits},
        "sets": {},
    }
    for set_name, pairs in sets.items():
        results["sets"][set_name] = measures(
            evaluate(models.rewards, pairs, config.bootstrap_samples, seed=config.seed)
        )
    members: dict[str, Any] = {t: m.rewards for t, m in models.members.items()}
    if shared is not None:
        members[SHARED] = shared.rewards
    matrix = generalization_matrix(members, sets["test"], config.bootstrap_samples)
    results["matrix"] = {
        m: {t: matrix.cells[m][t].accuracy for t in matrix.traits} for m in matrix.models
    }
    return results


def goals(results: dict[str, dict[str, Any]]) -> list[str]:
    """One line per goal and variant: met or not, with the numbers."""
    lines = []
    base = results.get("none")
    for name, result in results.items():
        for set_name, m in result["sets"].items():
            change = m["accuracy"] - base["sets"][set_name]["accuracy"] if base else 0.0
            flip_ok = m["preamble_flip"] <= GOAL_FLIP and change >= -GOAL_ACCURACY_DROP
            ratio = m["style_ratio"]
            style_ok = ratio is not None and ratio >= GOAL_STYLE_RATIO
            lines.append(
                f"{name:>12} {set_name:>19}: preamble flip {m['preamble_flip']:.1%} "
                f"(accuracy {change * 100:+.1f} points vs none) {'MET' if flip_ok else 'not met'}; "
                f"style-hard ratio {ratio if ratio is None else f'{ratio:.2f}'} "
                f"{'MET' if style_ok else 'not met'}"
            )
        shared = result["matrix"].get(SHARED)
        if shared:
            low = min(shared.values())
            lines.append(
                f"{name:>12} {'shared row':>19}: lowest cell {low:.1%} "
                f"{'MET' if low >= GOAL_MATRIX_CELL else 'not met'} (goal >= 45%)"
            )
    return lines


def table(results: dict[str, dict[str, Any]]) -> str:
    head = (
        f"{'variant':>12} {'set':>19} {'pairs':>5} {'acc':>6} {'flip':>6} {'shift':>6} "
        f"{'style':>6} {'ratio':>5} {'len-rho':>7}"
    )
    rows = [head]
    for name, result in results.items():
        for set_name, m in result["sets"].items():
            style = "n/a" if m["style_hard"] is None else f"{m['style_hard']:.1%}"
            ratio = "n/a" if m["style_ratio"] is None else f"{m['style_ratio']:.2f}"
            rows.append(
                f"{name:>12} {set_name:>19} {m['pairs']:>5} {m['accuracy']:>6.1%} "
                f"{m['preamble_flip']:>6.1%} {m['preamble_shift']:>+6.2f} {style:>6} {ratio:>5} "
                f"{m['length_spearman']:>7.2f}"
            )
    rows.append("")
    rows.append("matrix on the test split (rows: model, columns: test trait)")
    for name, result in results.items():
        for model, cells in result["matrix"].items():
            shown = "  ".join(f"{t} {a:.1%}" for t, a in cells.items())
            rows.append(f"{name:>12} {model:>14}: {shown}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="all-MiniLM-L6-v2")
    parser.add_argument("--limit", type=int, default=120, help="training pairs per trait (0: all)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
    config = RewardConfig(
        backbone=args.backbone,
        max_length=args.max_length,
        shared_row=True,
        seed=args.seed,
        bootstrap_samples=200,
    )
    with tempfile.TemporaryDirectory(prefix="traitforge-robustness-") as scratch:
        root = Path(scratch)
        splits = exported_splits(root / "gold", TRAIN_FILES)
        held = exported_splits(root / "held-out", (HELD_OUT_FILE,))
        train = subsample(splits["train"], args.limit, args.seed)
        sets = {
            "test": splits["test"],
            "honesty-new": honesty_new_answers(splits["test"]),
            "corrigibility-more": [p for pairs in held.values() for p in pairs],
        }
        data = save(root / "data", {"train": train, "test": splits["test"]})
        print(
            f"training pairs: {len(train)} ({args.limit or 'all'} per trait at most) on "
            f"{args.backbone}; evaluation sets: "
            + ", ".join(f"{k} {len(v)}" for k, v in sets.items()),
            flush=True,
        )
        results = {}
        for name in names:
            results[name] = run_variant(name, VARIANTS[name], data, root, config, sets)
            print(f"{name}: trained in {results[name]['train_seconds']} s", flush=True)
            # each variant's rows as soon as they exist: a long run stopped early still says
            # what it measured
            print(table({name: results[name]}), flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print()
    print("\n".join(goals(results)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
