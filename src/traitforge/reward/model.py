"""Trained reward models on disk, and scoring with them.

A model folder holds the transformers checkpoint, its tokenizer and `traitforge-reward.json`
(how texts were encoded, what it was trained on). A training run's output folder is either
one shared model, or a *set*: one model folder per trait plus a manifest naming them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from traitforge.errors import TraitforgeError
from traitforge.reward.backbone import load_reward_model
from traitforge.reward.encoding import PairEncoder
from traitforge.reward.linear import METHOD as LINEAR
from traitforge.reward.linear import WEIGHTS_FILE, LinearRewardModel
from traitforge.reward.pairs import Prompt
from traitforge.workspace.files import REWARD_MANIFEST

MANIFEST = REWARD_MANIFEST  # also what makes an output folder a traitforge reward-model folder
SCORE_BATCH = {"cpu": 32, "cuda": 128}


class ModelError(TraitforgeError):
    """A reward-model folder is missing, incomplete or of another kind."""


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelError(
            f"{folder} is not a traitforge reward model ({MANIFEST} is missing). Point at the "
            "--out folder of `traitforge train` or one of its trait subfolders"
        )
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class RewardModel:
    """One model: rewards for (prompt, response) texts, batched, on the GPU when present."""

    folder: Path
    manifest: dict[str, Any]
    model: Any
    encoder: PairEncoder
    device: str

    @classmethod
    def load(cls, folder: Path, device: str = "auto") -> RewardModel:
        import torch

        manifest = read_manifest(folder)
        if manifest.get("kind") != "model":
            raise ModelError(f"{folder} holds a set of models; load it with RewardModelSet")
        model, tokenizer = load_reward_model(folder)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model.to(device).eval()
        encoder = PairEncoder(tokenizer, manifest["max_length"], manifest["trait_prefix"])
        return cls(folder, manifest, model, encoder, device)

    @property
    def name(self) -> str:
        return self.manifest.get("trait") or "shared"

    def rewards(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        traits: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """One reward per (prompt, response); batches hold texts of similar length, so
        little compute goes to padding."""
        import torch

        traits = traits or [None] * len(prompts)
        ids = [
            self.encoder.encode(p, r, t).ids
            for p, r, t in zip(prompts, responses, traits, strict=True)
        ]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros(len(ids), dtype=np.float64)
        batch = SCORE_BATCH.get(self.device, 32)
        pad = self.encoder.tokenizer.pad_token_id
        with torch.inference_mode():
            for start in range(0, len(order), batch):
                rows = order[start : start + batch]
                width = max(len(ids[i]) for i in rows)
                input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for j, i in enumerate(rows):
                    input_ids[j, : len(ids[i])] = torch.tensor(ids[i])
                    mask[j, : len(ids[i])] = 1
                logits = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
                ).logits
                out[rows] = logits.squeeze(-1).float().cpu().numpy()
        return out


AnyRewardModel = RewardModel | LinearRewardModel


def load_model(folder: Path, device: str = "auto", vectors: Path | None = None) -> AnyRewardModel:
    """One model folder, fine-tuned or frozen-linear (its manifest says which); `vectors`: the
    embedding cache a frozen-linear model reads (see `runs.train_run`)."""
    manifest = read_manifest(folder)
    if manifest.get("method") != LINEAR:
        return RewardModel.load(folder, device)
    if manifest.get("kind") != "model":
        raise ModelError(f"{folder} holds a set of models; load it with RewardModelSet")
    if not (folder / WEIGHTS_FILE).is_file():
        raise ModelError(f"{folder}: {WEIGHTS_FILE} is missing; train the model again")
    return LinearRewardModel(folder, manifest, vectors)


class RewardModelSet:
    """What `traitforge train` wrote: one model per trait, or one shared model. Routes each
    text to its trait's model."""

    def __init__(self, folder: Path, device: str = "auto", vectors: Path | None = None) -> None:
        self.folder = folder
        manifest = read_manifest(folder)
        self.manifest = manifest
        if manifest.get("kind") == "set":
            self.members = {
                trait: load_model(folder / sub, device, vectors)
                for trait, sub in sorted(manifest["members"].items())
            }
            self.shared: AnyRewardModel | None = None
        else:
            self.members = {}
            self.shared = load_model(folder, device, vectors)

    def shared_row(
        self, device: str = "auto", vectors: Path | None = None
    ) -> AnyRewardModel | None:
        """The shared model a per-trait set was trained with (reward.shared_row), for the
        matrix's row; loaded on demand, as nothing else scores with it."""
        sub = self.manifest.get("shared_row")
        return load_model(self.folder / sub, device, vectors) if sub else None

    @property
    def traits(self) -> list[str]:
        if self.shared is not None:
            return list(self.shared.manifest.get("traits", []))
        return sorted(self.members)

    def model_for(self, trait: str | None) -> AnyRewardModel:
        if self.shared is not None:
            return self.shared
        if trait in self.members:
            return self.members[trait]
        if trait is None and len(self.members) == 1:
            return next(iter(self.members.values()))
        raise ModelError(
            f"{self.folder} has models for {sorted(self.members)}, not for trait {trait!r}. "
            "Evaluate pairs of those traits, or train a model for this one"
        )

    def rewards(
        self, prompts: Sequence[Prompt], responses: Sequence[str], traits: Sequence[str | None]
    ) -> np.ndarray:
        out = np.zeros(len(prompts), dtype=np.float64)
        for trait in sorted(set(traits), key=str):
            rows = [i for i, t in enumerate(traits) if t == trait]
            model = self.model_for(trait)
            out[rows] = model.rewards(
                [prompts[i] for i in rows], [responses[i] for i in rows], [trait] * len(rows)
            )
        return out
