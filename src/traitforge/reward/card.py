"""The model card written next to trained reward models: data, config, evaluation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from traitforge.reporting import fmt_counts, fmt_num, fmt_pct
from traitforge.reward.linear import METHOD as LINEAR
from traitforge.reward.report import fmt_accuracy, style_hard_line, training_note
from traitforge.schemas import EvaluationResult


def model_card(
    training: Sequence[dict[str, Any]],
    evaluation: EvaluationResult | None,
    config: dict[str, Any],
    provenance: dict[str, Any],
    not_evaluated: str | None = None,
    untested: Sequence[str] = (),
) -> str:
    linear = config.get("method") == LINEAR
    how = (
        "a linear reward w . phi on the frozen backbone's sentence vectors, phi = [response, "
        "prompt * response], fitted by L2 logistic regression (reward.method: frozen-linear)"
        if linear
        else "TRL `RewardTrainer`"
    )
    use = (
        "Each model folder holds `linear-reward.npy` (w) and `traitforge-reward.json` (the "
        "backbone whose vectors phi reads)."
        if linear
        else "Each subfolder with a `config.json` is a plain transformers sequence-classification "
        "checkpoint (one output: the reward)."
    )
    lines = [
        "---",
        "library_name: transformers",
        "tags: [reward-model, traitforge, trl]",
        "---",
        "",
        "# traitforge reward model",
        "",
        f"Trained with `traitforge train` ({how}) on preference pairs exported by "
        "traitforge. Higher reward means more of the trait, as the rubric defines it.",
        "",
        "## Models",
        "",
        "| model | pairs | epochs | steps | over max_length | device | precision | train loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fit in training:
        length = fit["length"]
        over = f"{length['over']} ({length['policy']})"
        epochs = fmt_num(fit["epochs"], 1) + (" (capped)" if fit["epochs_capped"] else "")
        lines.append(
            f"| {fit['name']} | {fit['pairs']} | {epochs} | {fit['steps']} | {over} | "
            f"{fit['device']} | {fit['precision']} | {fmt_num(fit['train_loss'], 4)} |"
        )
    if training:
        lines += ["", "Pairs: distinct training pairs; each epoch passes over all of them once."]
    if added := [f for f in training if f.get("augmented")]:
        lines += [
            "",
            "Counterfactual pairs (reward.augment) among them, built from each model's training "
            "pairs only, never from the test split: "
            + "; ".join(f"{f['name']}: {fmt_counts(f['augmented'], '{n} {name}')}" for f in added)
            + ".",
        ]
    if continued := [f for f in training if f.get("started_from")]:
        lines += [
            "",
            "Continued from an earlier round's model (reward.warm_start), for reward.epochs "
            "passes: " + "; ".join(f"{f['name']}: {f['started_from']}" for f in continued) + ".",
        ]
    if note := training_note(training):
        lines += ["", note]
    if evaluation:
        shortcuts = evaluation.shortcuts
        lines += [
            "",
            "## Evaluation on the test split",
            "",
            "- Pairwise accuracy: "
            f"{fmt_accuracy(evaluation.accuracy, evaluation.accuracy_ci, evaluation.pairs)} "
            f"on {evaluation.pairs} pairs",
            f"- Always-longer baseline: {fmt_pct(shortcuts.length_baseline_accuracy)}",
            f"- Accuracy when the chosen answer is the shorter one: "
            f"{fmt_pct(shortcuts.accuracy_chosen_shorter)} ({shortcuts.chosen_shorter_pairs} "
            "pairs)",
            f"- Spearman correlation of reward with length: "
            f"{fmt_num(shortcuts.length_reward_spearman)}",
            f"- Calibration of P(chosen > rejected): ECE {fmt_num(evaluation.calibration.ece)}",
            *(
                [f"- Style-hard accuracy: {style_hard_line(evaluation.style_hard)}"]
                if evaluation.style_hard
                else []
            ),
            f"- Pairs skipped, not scored: {fmt_counts(evaluation.skipped, '{n} ({name})')}",
            "",
            "| trait | pairs | accuracy | always-longer |",
            "|---|---|---|---|",
        ]
        for trait, row in evaluation.per_trait.items():
            accuracy = fmt_accuracy(row.accuracy, row.accuracy_ci, row.pairs)
            lines.append(f"| {trait} | {row.pairs} | {accuracy} | {fmt_pct(row.length_baseline)} |")
        if untested:
            lines += ["", f"Not evaluated, no test pairs: {', '.join(untested)}."]
    elif not_evaluated:
        lines += ["", "## Evaluation", "", f"Not evaluated: {not_evaluated}."]
    lines += [
        "",
        "## Data provenance",
        "",
        "```json",
        json.dumps(provenance, indent=2, sort_keys=True),
        "```",
        "",
        "## Training config",
        "",
        "```json",
        json.dumps(config, indent=2, sort_keys=True),
        "```",
        "",
        "## Use",
        "",
        "Score with `traitforge eval --model THIS_FOLDER --pairs PAIRS` or "
        f"`traitforge score --model THIS_FOLDER`. {use}",
        "",
    ]
    return "\n".join(lines)
