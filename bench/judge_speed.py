"""Seconds per candidate of the local trait judge (`judge.v1`), rubric prefix reused or not.

Each judge prompt is [system + the trait's rubric and question] + [conversation + response +
"Rating:"]; the first part is most of the tokens and the same for every candidate of a trait. Same
candidates, same loaded model, one process, order alternating between repeats:
- baseline, full passes: every forward pass reads the whole prompt (`reuse_prefix=False`);
- rubric reused: the rubric is read once and its keys and values reused by every batch
  (what `curate` runs), the first reading of the rubric included in each repeat.
Candidates are judged in the order the scorer uses (by length), in batches of --batch-size.
The largest difference between the two runs' expected ratings is printed too (they should be
the same ratings).

    .venv/bin/python bench/judge_speed.py --limit 30 --repeats 3
    .venv/bin/python bench/judge_speed.py --data bundled --trait honesty
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import embeddings as embeddings_bench  # bench/embeddings.py: the same mix of candidates
from traitforge.curation.scorers.judge_backends import LocalRater
from traitforge.curation.scorers.judge_cache import Rating
from traitforge.curation.scorers.judge_prompt import judge_messages
from traitforge.schemas import Candidate, JudgeConfig, ProjectConfig, TraitSpec, prompt_text
from traitforge.workspace import default_config, load_config

OWN_DATA = Path(__file__).resolve().parents[1] / "examples" / "own-data"


def own_candidates(limit: int) -> tuple[ProjectConfig, list[Candidate]]:
    config = load_config(OWN_DATA / "project.yaml")
    with (OWN_DATA / "candidates.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return config, [
        Candidate(prompt=r["prompt"], response=r["response"], source="own") for r in rows
    ][:limit]


def bundled_candidates(limit: int) -> tuple[ProjectConfig, list[Candidate]]:
    return default_config(), embeddings_bench.bundled_candidates(limit)


def judge_all(rater: LocalRater, trait: TraitSpec, candidates: list[Candidate]) -> list[Rating]:
    rater._prefix = None  # each run reads the rubric itself, as a fresh `curate` would
    ordered = sorted(candidates, key=lambda c: len(prompt_text(c.prompt)) + len(c.response))
    batch = [judge_messages(trait, c, 2000) for c in ordered]
    ratings: list[Rating] = []
    for start in range(0, len(batch), rater.batch_size):
        ratings += [r for r in rater.rate(trait, batch[start : start + rater.batch_size]) if r]
    return ratings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        choices=["own", "bundled"],
        default="own",
        help="examples/own-data (sycophancy) or the bundled data (honesty)",
    )
    parser.add_argument("--trait", default=None, help="default: sycophancy / honesty")
    parser.add_argument("--limit", type=int, default=30, help="candidates")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    if args.data == "own":
        config, candidates = own_candidates(args.limit)
    else:
        config, candidates = bundled_candidates(args.limit)
    trait = config.trait(args.trait or ("sycophancy" if args.data == "own" else "honesty"))
    settings = JudgeConfig(model=args.model, batch_size=args.batch_size, device=args.device)
    reused = LocalRater(settings)
    reused.setup()
    full = LocalRater(settings, reused._model, reused._tokenizer, reuse_prefix=False)
    full.setup()
    judge_all(reused, trait, candidates[: args.batch_size])  # warm-up, one-off costs

    runs = {"baseline, full passes": full, "rubric reused": reused}
    times: dict[str, list[float]] = {name: [] for name in runs}
    ratings: dict[str, list[Rating]] = {}
    for repeat in range(args.repeats):
        order = list(runs.items())
        for name, rater in order if repeat % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            ratings[name] = judge_all(rater, trait, candidates)
            times[name].append(time.perf_counter() - start)

    n = len(candidates)
    rubric = len(reused._tokenizer(reused._prefix.text, add_special_tokens=False)["input_ids"])
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["baseline, full passes"]
    print(
        f"\n{n} candidates, trait {trait.name} (rubric prefix {rubric} tokens), model "
        f"{args.model}, batch {args.batch_size}, device {reused.device}, "
        f"{torch.get_num_threads()} torch threads, median of {args.repeats} runs"
    )
    print(f"{'run':<24}{'median s':>10}{'s/candidate':>13}{'vs baseline':>13}")
    for name, median in medians.items():
        print(f"{name:<24}{median:>10.2f}{median / n:>13.3f}{base / median:>12.2f}x")
    difference = max(
        abs(a.value - b.value)
        for a, b in zip(ratings["baseline, full passes"], ratings["rubric reused"], strict=True)
    )
    print(f"largest difference in expected rating between the two: {difference:.2e}")


if __name__ == "__main__":
    main()
