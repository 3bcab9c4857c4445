"""Reward-model training throughput and accuracy: traitforge's `fit` against TRL's defaults.

The data is what the product trains on: the bundled TruthfulQA csv ingested into a temporary
workspace and exported, giving honesty pairs with a train and a test split. Same backbone, same
pairs, same epochs, learning rate, warmup, batch size and seed on both sides, one process:
- traitforge: `reward.training.fit` with RewardConfig's defaults for the device (bf16 on a GPU
  or CPU that has it natively, fp32 elsewhere; no gradient checkpointing; length-grouped
  batches; its own tokenization), then the saved model loaded back with `RewardModel.load`;
- TRL: `trl.RewardTrainer` with `trl.RewardConfig`'s documented defaults for everything else
  (gradient checkpointing on, bf16 on, random batches, max_length 1024), on plain
  prompt/chosen/rejected columns that TRL tokenizes itself: conversational for a backbone with
  a chat template, text otherwise. On CPU TRL's bf16 default is not kept (emulated bf16 is many
  times slower): that side runs at the precision traitforge resolved, bf16 only where native.
Only `train()` is timed (wall seconds; pairs/s = pairs x epochs / seconds); loading and
tokenizing are not. One untimed training step through `fit` warms up CUDA, the Trainer and the
optimizer before either side runs. Peak GPU memory is `torch.cuda.max_memory_allocated`, reset
before each side. Both models are evaluated on the test split with `reward.evaluation.evaluate`,
each scoring texts in the format it was trained on; the TRL model's accuracy with traitforge's
PairEncoder is printed too. With the default `--repeats 1` the ratio comes from one run per
side: device time is scarce, so read a ratio near the goal as a hint, not a result.

    .venv/bin/python bench/rm_throughput.py --backbone SmolLM2-135M-Instruct --json rm.json
    .venv/bin/python bench/rm_throughput.py --tiny --backbone all-MiniLM-L6-v2   # CPU, seconds
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitforge.app.workflows import bundled_data_dir, export, ingest
from traitforge.reward.backbone import device_settings, load_for_training, resolve_backbone
from traitforge.reward.encoding import Encoded, PairEncoder
from traitforge.reward.evaluation import evaluate
from traitforge.reward.model import RewardModel
from traitforge.reward.pairs import Prompt, RewardPair, load_splits, prompt_as_text
from traitforge.reward.training import fit, optimization_settings
from traitforge.schemas import RewardConfig
from traitforge.workspace import Workspace

GOAL_SPEEDUP = 1.5
TRAIT = "honesty"
SIDES = ("traitforge", "trl")


def honesty_pairs(folder: Path) -> dict[str, list[RewardPair]]:
    """The bundled TruthfulQA, ingested and exported as the product does it."""
    workspace = Workspace.open(folder / "workspace")
    ingest(workspace, "truthfulqa", [bundled_data_dir() / "truthfulqa" / "TruthfulQA.csv"])
    splits = load_splits(export(workspace).out)
    return {name: [p for p in pairs if p.trait == TRAIT] for name, pairs in splits.items()}


@dataclass
class Run:
    side: str
    position: int  # 0: ran first in its repeat
    pairs: int
    seconds: float
    peak_gpu_bytes: int | None
    precision: str
    gradient_checkpointing: bool
    accuracy: float
    accuracy_ci: list[float] | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "position": self.position,
            "pairs": self.pairs,
            "seconds": round(self.seconds, 3),
            "pairs_per_second": round(self.pairs_per_second, 3),
            "peak_gpu_bytes": self.peak_gpu_bytes,
            "precision": self.precision,
            "gradient_checkpointing": self.gradient_checkpointing,
            "accuracy": self.accuracy,
            "accuracy_ci": self.accuracy_ci,
            **self.extra,
        }


class TrlFormat(PairEncoder):
    """Texts tokenized the way RewardTrainer tokenized its training data: the chat template
    over the whole conversation, or prompt + response + eos as one text."""

    def __init__(self, tokenizer: Any, chat: bool) -> None:
        super().__init__(tokenizer, max_length=1 << 30)
        self.chat = chat

    def encode(self, prompt: Prompt, response: str, trait: str | None = None) -> Encoded:
        tok = self.tokenizer
        if self.chat:
            messages = [*_messages(prompt), {"role": "assistant", "content": response}]
            ids = tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        else:
            ids = tok(text=prompt_as_text(prompt) + _text_response(response) + tok.eos_token)[
                "input_ids"
            ]
        return Encoded(list(ids), len(ids), False)


def _messages(prompt: Prompt) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": role, "content": content} for role, content in prompt]


def _text_response(response: str) -> str:
    # TRL joins prompt and response with nothing between; its dataset docs put the separator
    # at the start of the completion (" blue."), so the data does the same here.
    return " " + response


class Device:
    """CUDA when present: warm-up, peak-memory bookkeeping, freeing between sides."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.cuda = torch.cuda.is_available()
        self.name = torch.cuda.get_device_name() if self.cuda else "cpu"

    def warm_up(self, pairs: Sequence[RewardPair], config: RewardConfig, folder: Path) -> None:
        """One training step through `fit`, untimed, so the side that runs first does not pay
        alone for CUDA's start-up, the Trainer's lazy imports and the optimizer's first step."""
        rows = config.batch_size or device_settings(config.precision, None).batch_size
        rows = rows if self.cuda else 2  # a CPU needs no realistic shapes, only the first call
        warm = config.model_copy(update={"epochs": 1.0, "batch_size": rows})
        fit(pairs[:rows], warm, folder, TRAIT, trait_prefix=False, log=lambda _: None)
        self.free()

    def reset_peak(self) -> None:
        self.free()
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> int | None:
        return int(self.torch.cuda.max_memory_allocated()) if self.cuda else None

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()


def run_traitforge(
    pairs: dict[str, list[RewardPair]], config: RewardConfig, folder: Path, device: Device
) -> Run:
    device.reset_peak()
    result = fit(
        pairs["train"],
        config,
        folder,
        TRAIT,
        trait_prefix=False,
        log=lambda line: print(f"  traitforge {line}"),
    )
    peak = device.peak()
    model = RewardModel.load(folder)
    report = evaluate(model.rewards, pairs["test"], config.bootstrap_samples)
    del model
    device.free()
    return Run(
        side="traitforge",
        position=0,
        pairs=result.pairs_seen,  # every pass, as on the TRL side
        seconds=result.seconds,
        peak_gpu_bytes=peak,
        precision=result.precision,
        gradient_checkpointing=config.gradient_checkpointing,
        accuracy=report.accuracy,
        accuracy_ci=report.accuracy_ci,
    )


def run_trl(
    pairs: dict[str, list[RewardPair]], config: RewardConfig, folder: Path, device: Device
) -> Run:
    from datasets import Dataset
    from transformers import set_seed
    from trl import RewardConfig as TrlRewardConfig
    from trl import RewardTrainer

    settings = device_settings(config.precision, config.batch_size)
    device.reset_peak()
    set_seed(config.seed)  # as fit() does: the fresh reward head starts from the same weights
    model, tokenizer, _ = load_for_training(config.backbone)
    chat = bool(getattr(tokenizer, "chat_template", None))
    dataset = Dataset.from_list([_trl_row(p, chat) for p in pairs["train"]])
    args = TrlRewardConfig(
        output_dir=str(folder),
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        **optimization_settings(config, settings),  # comparable: as traitforge resolved them
        # on a CPU, traitforge's precision (TRL's bf16 default is slow where it is emulated);
        # everything else is left at TRL's defaults
        **({} if device.cuda else {"bf16": settings.bf16, "use_cpu": True}),
        # a BERT tokenizer has no eos token; TRL appends one to every text response
        **({} if chat or tokenizer.eos_token else {"eos_token": tokenizer.sep_token}),
    )
    trainer = RewardTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    peak = device.peak()
    trained = trainer.model.eval()
    scoring = "cuda" if device.cuda else "cpu"
    own = RewardModel(folder, {}, trained, TrlFormat(tokenizer, chat), scoring)
    report = evaluate(own.rewards, pairs["test"], config.bootstrap_samples)
    encoder = PairEncoder(tokenizer, config.max_length)
    with_encoder = evaluate(
        RewardModel(folder, {}, trained, encoder, scoring).rewards,
        pairs["test"],
        config.bootstrap_samples,
    )
    result = Run(
        side="trl",
        position=0,
        pairs=int(len(trainer.train_dataset) * config.epochs),
        seconds=seconds,
        peak_gpu_bytes=peak,
        precision="bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        gradient_checkpointing=bool(args.gradient_checkpointing),
        accuracy=report.accuracy,
        accuracy_ci=report.accuracy_ci,
        extra={
            "format": "conversational" if chat else "text",
            "dropped_by_max_length": len(dataset) - len(trainer.train_dataset),
            "accuracy_with_traitforge_encoding": with_encoder.accuracy,
        },
    )
    del trainer, model, trained, own
    device.free()
    return result


def _trl_row(pair: RewardPair, chat: bool) -> dict[str, Any]:
    """TRL's preference format with an explicit prompt."""
    if chat:
        return {
            "prompt": _messages(pair.prompt),
            "chosen": [{"role": "assistant", "content": pair.chosen}],
            "rejected": [{"role": "assistant", "content": pair.rejected}],
        }
    return {
        "prompt": prompt_as_text(pair.prompt),
        "chosen": _text_response(pair.chosen),
        "rejected": _text_response(pair.rejected),
    }


RUNNERS = {"traitforge": run_traitforge, "trl": run_trl}


def summarize(runs: Sequence[Run]) -> dict[str, Any]:
    """Median throughput and mean accuracy over the repeats of one side."""
    peaks = [r.peak_gpu_bytes for r in runs if r.peak_gpu_bytes is not None]
    first = runs[0]
    return {
        "pairs": first.pairs,
        "seconds": round(statistics.median(r.seconds for r in runs), 3),
        "pairs_per_second": statistics.median(r.pairs_per_second for r in runs),
        "peak_gpu_bytes": max(peaks) if peaks else None,
        "precision": first.precision,
        "gradient_checkpointing": first.gradient_checkpointing,
        "accuracy": statistics.fmean(r.accuracy for r in runs),
        "accuracy_ci": first.accuracy_ci,
        **first.extra,
    }


def report(results: dict[str, Any], tolerance: float) -> None:
    ours, trl = results["traitforge"], results["trl"]
    print(
        f"\n{results['backbone']} on {results['device']}: {results['train_pairs']} train pairs "
        f"x {results['epochs']} epochs, batch {results['batch_size']}, lr "
        f"{results['learning_rate']}, {results['test_pairs']} test pairs, "
        f"{results['repeats']} run(s) per side"
    )
    if not results["cuda"]:
        print(f"on a CPU TRL's side runs at traitforge's precision, {ours['precision']}")
    header = f"{'side':<12}{'precision':>10}{'grad ckpt':>11}{'seconds':>10}{'pairs/s':>10}"
    print(f"{header}{'peak GPU MiB':>14}{'accuracy':>10}  95% CI")
    for name, side in (("traitforge", ours), ("trl", trl)):
        peak = side["peak_gpu_bytes"]
        memory = f"{peak / 2**20:.0f}" if peak is not None else "n/a"
        ci = side["accuracy_ci"]
        interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "n/a"
        print(
            f"{name:<12}{side['precision']:>10}{side['gradient_checkpointing']!s:>11}"
            f"{side['seconds']:>10.2f}{side['pairs_per_second']:>10.1f}{memory:>14}"
            f"{side['accuracy']:>10.3f}  {interval}"
        )
    print(
        f"TRL ({trl['format']} data, {trl['dropped_by_max_length']} pairs dropped by its "
        f"max_length) scored with traitforge's PairEncoder: accuracy "
        f"{trl['accuracy_with_traitforge_encoding']:.3f}"
    )
    goal = results["goal"]
    print(
        f"throughput ratio traitforge/TRL: {results['ratio']:.2f}x (goal >= {GOAL_SPEEDUP}x); "
        f"accuracy difference {results['accuracy_difference']:+.3f} (goal >= -{tolerance}); "
        f"goal {'met' if goal['met'] else 'NOT met'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="SmolLM2-135M-Instruct")
    parser.add_argument("--epochs", type=float, help="default: RewardConfig's (3), 1 with --tiny")
    parser.add_argument("--batch-size", type=int, help="default: RewardConfig's for the device")
    parser.add_argument("--max-length", type=int, help="traitforge's; default RewardConfig's")
    parser.add_argument("--train-limit", type=int, help="first N train pairs (default all)")
    parser.add_argument("--test-limit", type=int, help="first N test pairs (default all)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side, order alternating")
    parser.add_argument("--first", choices=SIDES, default="traitforge", help="side run first")
    parser.add_argument("--tolerance", type=float, default=0.02, help="accuracy the goal allows")
    parser.add_argument(
        "--tiny", action="store_true", help="8 train and 8 test pairs, 1 epoch: CPU smoke run"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.tiny:
        args.train_limit = args.train_limit or 8
        args.test_limit = args.test_limit or 8
        args.epochs = args.epochs or 1.0
        args.batch_size = args.batch_size or 8
        args.max_length = args.max_length or 128
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
    }
    config = RewardConfig(
        backbone=args.backbone,
        min_steps=0,  # the same epochs on both sides: TRL has no such floor
        **{k: v for k, v in overrides.items() if v is not None},
    )

    device = Device()
    resolve_backbone(args.backbone)  # a GGUF backbone is dequantized once, before any timing
    settings = device_settings(config.precision, config.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        pairs = honesty_pairs(Path(tmp))
        pairs = {
            "train": pairs["train"][: args.train_limit],
            "test": pairs["test"][: args.test_limit],
        }
        print(
            f"{len(pairs['train'])} train and {len(pairs['test'])} test {TRAIT} pairs "
            f"exported in {time.perf_counter() - started:.1f}s"
        )
        started = time.perf_counter()
        device.warm_up(pairs["train"], config, Path(tmp) / "warm-up")
        print(f"warm-up step through fit(): {time.perf_counter() - started:.1f}s")
        runs: dict[str, list[Run]] = {side: [] for side in SIDES}
        order = [args.first, *(s for s in SIDES if s != args.first)]
        for repeat in range(args.repeats):
            for position, side in enumerate(order if repeat % 2 == 0 else order[::-1]):
                print(f"repeat {repeat + 1}/{args.repeats}: {side}")
                run = RUNNERS[side](pairs, config, Path(tmp) / f"{side}-{repeat}", device)
                run.position = position
                runs[side].append(run)
                print(
                    f"  {side}: {run.pairs} pairs in {run.seconds:.2f}s, "
                    f"{run.pairs_per_second:.1f} pairs/s, accuracy {run.accuracy:.3f}"
                )

    ours, trl = summarize(runs["traitforge"]), summarize(runs["trl"])
    ratio = ours["pairs_per_second"] / trl["pairs_per_second"]
    difference = ours["accuracy"] - trl["accuracy"]
    results = {
        "backbone": args.backbone,
        "device": device.name,
        "cuda": device.cuda,
        "train_pairs": len(pairs["train"]),
        "test_pairs": len(pairs["test"]),
        "epochs": config.epochs,
        "batch_size": settings.batch_size,
        "learning_rate": config.learning_rate,
        "repeats": args.repeats,
        "traitforge": ours,
        "trl": trl,
        "ratio": ratio,
        "accuracy_difference": difference,
        "goal": {
            "speedup": GOAL_SPEEDUP,
            "accuracy_tolerance": args.tolerance,
            "met": ratio >= GOAL_SPEEDUP and difference >= -args.tolerance,
        },
        "runs": [r.as_dict() for side in SIDES for r in runs[side]],
    }
    report(results, args.tolerance)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
