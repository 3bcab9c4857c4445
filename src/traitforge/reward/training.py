"""Training reward models on exported pairs, with TRL's RewardTrainer.

traitforge prepares the inputs itself (see encoding.py) and sets what TRL's defaults get wrong
for small models and CPUs: no gradient checkpointing on CPU, bf16 where it is native (a GPU, or
a CPU with AVX512-BF16 or AMX) and fp32 elsewhere, length-grouped batches, and no silent
filtering of long pairs. Works unchanged under `accelerate launch` with DDP or FSDP (the
Trainer does the distribution; every rank takes part in gathering sharded weights, and only
the main process writes).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitforge.curation.progress import StageProgress
from traitforge.errors import ConfigError
from traitforge.reward.augment import augmented_counts, is_augmented
from traitforge.reward.backbone import (
    DeviceSettings,
    device_settings,
    head_module_names,
    load_for_training,
    load_reward_model,
)
from traitforge.reward.encoding import EncodedPair, LengthReport, PairEncoder, encode_pairs
from traitforge.reward.launch import check_launcher_precision, fsdp_ignored, full_state_dict
from traitforge.reward.pairs import RewardPair, no_usable_pairs, traits_of, usable_pairs
from traitforge.schemas import RewardConfig
from traitforge.schemas.results import TrainingSummary
from traitforge.workspace.files import REWARD_MANIFEST as MANIFEST

SHARED = "shared"
Log = Callable[[str], None]


@dataclass
class FitResult:
    """One trained model: where it is, what it saw, how fast it went."""

    name: str  # the trait, or 'shared'
    folder: Path
    pairs: int  # distinct training pairs (after the length check)
    length: LengthReport
    seconds: float
    train_loss: float
    device: str
    precision: str
    epochs: float = 1.0
    steps: int = 0  # optimizer steps made
    epochs_capped: bool = False  # reward.max_epochs stopped min_steps from adding more
    augmented: dict[str, int] = field(default_factory=dict)  # counterfactual pairs, by origin
    started_from: str | None = None  # the earlier model it continued (reward.warm_start)
    method: str = "fine-tune"  # reward.method
    model: Any = field(default=None, repr=False)  # the trained model, in memory (main process)

    @property
    def pairs_seen(self) -> int:
        """Pairs passed through the model over all epochs: what throughput is measured on."""
        return int(self.pairs * self.epochs)

    @property
    def pairs_per_second(self) -> float:
        return self.pairs_seen / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """'26 pairs x 20 epochs (40 steps)', with the cap when it applied."""
        if self.method != "fine-tune":
            return f"{self.pairs} pairs, {self.method} ({self.steps} solver iterations)"
        text = f"{self.pairs} pairs x {fmt_epochs(self.epochs)} epochs ({self.steps} steps)"
        return text + (", epochs capped at reward.max_epochs" if self.epochs_capped else "")

    def training_summary(self) -> TrainingSummary:
        return TrainingSummary(
            pairs=self.pairs,
            epochs=round(self.epochs, 3),
            steps=self.steps,
            epochs_capped=self.epochs_capped,
            seconds=round(self.seconds, 3),
            started_from=self.started_from,
            method=self.method,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "folder": self.folder.name,
            "pairs": self.pairs,
            "epochs": round(self.epochs, 3),
            "steps": self.steps,
            "epochs_capped": self.epochs_capped,
            "augmented": self.augmented,
            "started_from": self.started_from,
            "method": self.method,
            "pairs_seen": self.pairs_seen,
            "length": self.length.as_dict(),
            "seconds": round(self.seconds, 3),
            "pairs_per_second": round(self.pairs_per_second, 3),
            "train_loss": round(self.train_loss, 6),
            "device": self.device,
            "precision": self.precision,
        }


@dataclass
class TrainPlan:
    """Which model learns from which pairs: one group per trait, or one shared group."""

    groups: dict[str, list[RewardPair]] = field(default_factory=dict)
    trait_prefix: bool = False
    skipped: dict[str, int] = field(default_factory=dict)  # name -> pairs, under min_pairs
    skipped_pairs: dict[str, int] = field(default_factory=dict)  # reason -> pairs not used


def plan(pairs: Sequence[RewardPair], mode: str, min_pairs: int = 1) -> TrainPlan:
    """The models to train; groups under `min_pairs` are left out (see `skipped`), and so are
    pairs no reward can learn from (see `skipped_pairs`)."""
    if not pairs:
        raise ConfigError("no training pairs: export some first (`traitforge export`)")
    given = len(pairs)
    pairs, skipped_pairs = usable_pairs(pairs)
    if not pairs:
        raise no_usable_pairs(given, skipped_pairs, "train on")
    traits = traits_of(pairs)
    if mode == "shared" or not traits:  # pairs without a trait column train one model
        groups = {SHARED: list(pairs)}
    else:
        untagged = sum(1 for p in pairs if not p.trait)
        if untagged:
            raise ConfigError(
                f"{untagged} pairs have no trait, so per-trait models cannot place them; fill "
                "the 'trait' field or set reward.models: shared"
            )
        groups = {t: [p for p in pairs if p.trait == t] for t in traits}
    result = TrainPlan(trait_prefix=mode == "shared" and bool(traits), skipped_pairs=skipped_pairs)
    for name, members in groups.items():
        if len(members) >= min_pairs:
            result.groups[name] = members
        else:
            result.skipped[name] = len(members)
    return result


@dataclass(frozen=True)
class EpochPlan:
    epochs: float  # what training runs
    wanted: float  # what reward.min_steps asked for, before reward.max_epochs

    @property
    def capped(self) -> bool:
        return self.wanted > self.epochs


def effective_epochs(
    config: RewardConfig, pairs: int, batch_size: int, fresh: bool = True
) -> EpochPlan:
    """config.epochs, raised for small datasets towards config.min_steps optimizer steps, but
    never by min_steps beyond config.max_epochs. A model that continues a trained one
    (`fresh` False) has no fresh head to move: config.epochs as they are."""
    if not fresh:
        return EpochPlan(float(config.epochs), float(config.epochs))
    per_step = batch_size * config.gradient_accumulation_steps
    wanted = max(config.epochs, config.min_steps * per_step / max(pairs, 1))
    return EpochPlan(float(max(config.epochs, min(wanted, config.max_epochs))), float(wanted))


def fmt_epochs(epochs: float) -> str:
    """Epochs to one decimal, without a trailing '.0': 36.9, 20, 2.5."""
    return f"{epochs:.1f}".removesuffix(".0")


def planned_steps(pairs: int, epochs: float, batch_size: int, accumulation: int) -> int:
    """Optimizer steps of one process, counted as the Trainer counts them."""
    per_epoch = max(math.ceil(math.ceil(pairs / batch_size) / accumulation), 1)
    return math.ceil(epochs * per_epoch)


def fit(
    pairs: Sequence[RewardPair],
    config: RewardConfig,
    folder: Path,
    name: str,
    trait_prefix: bool,
    log: Log = print,
    provenance: dict[str, Any] | None = None,
    progress: StageProgress | None = None,
    start: Path | None = None,
) -> FitResult:
    """Train one reward model on `pairs` and save it (model, tokenizer, manifest) to `folder`;
    `progress` is told the optimizer steps done, under a label naming pairs and epochs.
    `start`: a reward model on the same backbone to continue instead of a fresh head."""
    from transformers import set_seed

    set_seed(config.seed)
    settings = device_settings(config.precision, config.batch_size)
    check_launcher_precision(settings.dtype_name)
    model, tokenizer, backbone_path = load_for_training(config.backbone, start)
    if start is not None:
        log(f"{name}: starts from {start} (reward.warm_start)")
    encoder = PairEncoder(tokenizer, config.max_length, trait_prefix)
    encoded, lengths = encode_pairs(encoder, pairs, config.overflow)
    log(f"{name}: {lengths.summary()}")
    if not encoded:
        raise ConfigError(f"{name}: no pairs left to train on after the length check")
    # Epochs count passes over the given pairs: counterfactual ones (reward.augment) come
    # along, so adding them never means fewer passes over the pairs people labelled.
    given = sum(1 for e in encoded if not is_augmented(e.pair)) or len(encoded)
    epochs = effective_epochs(config, given, settings.batch_size, fresh=start is None)
    log(f"{name}: {_epochs_line(config, epochs, len(encoded), settings.batch_size)}")
    config = config.model_copy(update={"epochs": epochs.epochs})
    with warnings.catch_warnings():
        # TRL 1.16 still sets transformers' deprecated `gradient_checkpointing` alias itself
        warnings.filterwarnings("ignore", "`.*checkpointing` is deprecated", FutureWarning)
        # The trainer's output_dir: scratch, outside --out and the folder around it (with
        # save_strategy "no" nothing is written there; the model is saved below).
        with tempfile.TemporaryDirectory(prefix="traitforge-trainer-") as scratch:
            trainer = _trainer(model, tokenizer, encoded, config, settings, Path(scratch))
            if fsdp_ignored(trainer.accelerator):
                log(
                    f"{name}: warning: the accelerate config asks for FSDP, but accelerate "
                    "shards only on GPUs; these CPU processes train with DDP (gloo)"
                )
            if progress is not None:
                shown = fmt_epochs(epochs.epochs)
                label = f"training {name} ({len(encoded)} pairs x {shown} epochs), steps"
                trainer.add_callback(_step_progress(progress, label))
            started = time.perf_counter()
            output = trainer.train()
            seconds = time.perf_counter() - started
            state = full_state_dict(trainer.accelerator, trainer.model_wrapped)
    result = FitResult(
        name=name,
        folder=folder,
        pairs=len(encoded),
        length=lengths,
        seconds=seconds,
        train_loss=float(output.training_loss),
        device=settings.device,
        precision=settings.dtype_name,
        epochs=epochs.epochs,
        steps=int(output.global_step),
        epochs_capped=epochs.capped,
        augmented=augmented_counts([e.pair for e in encoded]),
        started_from=str(start) if start is not None else None,
    )
    if trainer.accelerator.is_main_process:
        result.model = _save(
            trainer,
            state,
            tokenizer,
            folder,
            config,
            name,
            trait_prefix,
            backbone_path,
            pairs,
            result,
            provenance,
        )
    return result


def _epochs_line(config: RewardConfig, epochs: EpochPlan, pairs: int, batch_size: int) -> str:
    """How many passes over how many pairs, and why when min_steps or max_epochs decided."""
    steps = planned_steps(pairs, epochs.epochs, batch_size, config.gradient_accumulation_steps)
    line = f"{pairs} pairs x {fmt_epochs(epochs.epochs)} epochs, about {steps} steps"
    if epochs.capped:
        return (
            f"{line}: reward.min_steps ({config.min_steps}) asked for {epochs.wanted:.1f} "
            f"epochs; capped by reward.max_epochs ({config.max_epochs:g})"
        )
    if epochs.epochs > config.epochs:
        return f"{line}: raised from reward.epochs ({config.epochs:g}) to reach reward.min_steps"
    return line


def _step_progress(progress: StageProgress, label: str) -> Any:
    """A Trainer callback that reports optimizer steps done of the run's total."""
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                progress(label, 0, state.max_steps)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                progress(label, state.global_step, state.max_steps)

    return StepProgress()


def optimization_settings(config: RewardConfig, settings: DeviceSettings) -> dict[str, Any]:
    """What is learned and how fast, as TrainingArguments: shared with the TRL-defaults
    baseline in bench/rm_throughput.py, so the two differ only in how efficiently they run."""
    return {
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "num_train_epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "warmup_steps": config.warmup_ratio,
        "weight_decay": config.weight_decay,
        "seed": config.seed,
    }


def _trainer(
    model: Any,
    tokenizer: Any,
    encoded: Sequence[EncodedPair],
    config: RewardConfig,
    settings: DeviceSettings,
    scratch: Path,
) -> Any:
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import RewardConfig as TrlRewardConfig
    from trl import RewardTrainer

    columns: dict[str, list[Any]] = {
        "chosen_ids": [e.chosen.ids for e in encoded],
        "rejected_ids": [e.rejected.ids for e in encoded],
        "length": [max(len(e.chosen.ids), len(e.rejected.ids)) for e in encoded],
    }
    if config.margin_from_confidence:
        columns["margin"] = [
            e.pair.confidence if e.pair.confidence is not None else 1.0 for e in encoded
        ]
    dataset = Dataset.from_dict(columns)
    args = TrlRewardConfig(
        output_dir=str(scratch),
        **optimization_settings(config, settings),
        bf16=settings.bf16,
        fp16=settings.fp16,
        gradient_checkpointing=config.gradient_checkpointing,
        train_sampling_strategy="group_by_length",  # similar lengths share a batch: less padding
        remove_unused_columns=False,  # keeps 'length' for the sampler; the collator ignores it
        max_length=None,  # lengths were handled (and reported) by the encoder
        center_rewards_coefficient=config.center_rewards,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        data_seed=config.seed,
        disable_tqdm=True,
        dataloader_pin_memory=settings.device == "cuda",
        use_cpu=settings.device == "cpu",  # also makes `torchrun` on CPUs distribute (gloo)
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=_peft_config(config, model),
    )
    trainer.remove_callback(PrinterCallback)  # its raw metrics dict; the CLI prints a summary
    return trainer


def _peft_config(config: RewardConfig, model: Any) -> Any:
    """reward.lora as peft's LoraConfig, or None when LoRA is off."""
    if not config.lora.enabled:
        return None
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        # Without this the fresh reward head stays frozen at its random init.
        modules_to_save=head_module_names(model),
    )


def rebuilt(state: dict[str, Any], config: RewardConfig, backbone_path: str) -> Any:
    """A fresh copy of the backbone (with LoRA adapters when reward.lora is on) holding the
    gathered weights of a model that FSDP or DeepSpeed sharded: the trained module itself
    holds only this rank's shard. Loaded strictly, so a renamed weight fails loudly."""
    model, _ = load_reward_model(backbone_path, new_head=True)
    if (peft_config := _peft_config(config, model)) is not None:
        from peft import get_peft_model

        model = get_peft_model(model, peft_config)
    model.load_state_dict(state)
    return model


def _save(
    trainer: Any,
    state: dict[str, Any] | None,
    tokenizer: Any,
    folder: Path,
    config: RewardConfig,
    name: str,
    trait_prefix: bool,
    backbone_path: str,
    pairs: Sequence[RewardPair],
    result: FitResult,
    provenance: dict[str, Any] | None,
) -> Any:
    if state is None:
        # Mixed precision wraps the module's forward in autocast; without unwrapping, the
        # returned model would go on scoring in bf16 where the saved one scores in fp32.
        model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    else:
        model = rebuilt(state, config, backbone_path)
    if hasattr(model, "merge_and_unload"):  # LoRA: fold the adapters in, save a plain model
        model = model.merge_and_unload()
    model = model.to("cpu").float()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    manifest = {
        "kind": "model",
        "trait": None if name == SHARED else name,
        "traits": traits_of(pairs),
        "trait_prefix": trait_prefix,
        "max_length": config.max_length,
        "backbone": config.backbone,
        "backbone_path": backbone_path,
        "config": config.model_dump(mode="json"),
        "training": result.as_dict(),
        "provenance": provenance or {},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return model
