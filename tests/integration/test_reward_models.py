"""Reward models on the real MiniLM backbone, real TRL trainer and the bundled real data:
overfit, save and reload; the CLI's train / eval / eval --matrix / score contract."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import cli_env, run_cli
from tests.helpers.paths import TRUTHFULQA
from traitforge.app.workflows import bundled_data_dir
from traitforge.reward.model import RewardModel, RewardModelSet
from traitforge.reward.pairs import RewardPair
from traitforge.reward.runs import train_run
from traitforge.reward.training import fit
from traitforge.schemas import RewardConfig
from traitforge.workspace import Workspace

pytestmark = pytest.mark.integration

FAST = {"max_length": 64, "batch_size": 8, "bootstrap_samples": 200, "min_steps": 0, "min_pairs": 4}


def truthfulqa_pairs(count: int, skip: int = 0) -> list[RewardPair]:
    """(question, best answer, first incorrect answer) from the bundled TruthfulQA."""
    with TRUTHFULQA.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[skip : skip + count]
    return [
        RewardPair(
            prompt=r["Question"],
            chosen=r["Best Answer"],
            rejected=r["Incorrect Answers"].split(";")[0].strip(),
            trait="honesty",
            pair_id=f"tqa-{skip + i}",
        )
        for i, r in enumerate(rows)
    ]


def corrigibility_pairs(count: int) -> list[RewardPair]:
    path = bundled_data_dir() / "anthropic-evals" / "corrigible-neutral-HHH.jsonl"
    pairs = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            matching, other = row["answer_matching_behavior"], row["answer_not_matching_behavior"]
            pairs.append(
                RewardPair(row["question"][-300:], matching, other, "corrigibility", None, f"c{i}")
            )
            if len(pairs) == count:
                break
    return pairs


def save_dataset(folder: Path, splits: dict[str, list[RewardPair]]) -> Path:
    from datasets import Dataset, DatasetDict

    def columns(pairs: list[RewardPair]) -> dict[str, list]:
        return {
            "prompt": [p.prompt for p in pairs],
            "chosen": [p.chosen for p in pairs],
            "rejected": [p.rejected for p in pairs],
            "trait": [p.trait for p in pairs],
            "confidence": [1.0 for _ in pairs],
            "pair_id": [p.pair_id for p in pairs],
        }

    DatasetDict({k: Dataset.from_dict(columns(v)) for k, v in splits.items()}).save_to_disk(
        str(folder)
    )
    return folder


def _cpu_precisions() -> list[str]:
    """fp32, and bf16 where this CPU runs it natively (reward.precision auto picks it)."""
    from traitforge.reward.backbone import cpu_has_bf16

    return ["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]


@pytest.mark.parametrize("precision", _cpu_precisions())
def test_overfits_a_handful_of_pairs_and_reloads_with_the_same_rewards(tmp_path, precision):
    pairs = truthfulqa_pairs(6)
    config = RewardConfig(
        epochs=25, learning_rate=2e-4, warmup_ratio=0.0, precision=precision, **FAST
    )
    result = fit(pairs, config, tmp_path / "m", "honesty", trait_prefix=False, log=lambda _: None)
    assert result.device == "cpu" and result.precision == precision
    assert result.length.pairs == 6 and result.length.over == 0

    reloaded = RewardModel.load(tmp_path / "m")
    prompts = [p.prompt for p in pairs]
    chosen = reloaded.rewards(prompts, [p.chosen for p in pairs])
    rejected = reloaded.rewards(prompts, [p.rejected for p in pairs])
    assert (chosen > rejected).all(), (chosen, rejected)  # 100% training accuracy

    # the in-memory model, fed the same ids, gives the same rewards as the reloaded one
    in_memory = RewardModel(
        reloaded.folder, reloaded.manifest, result.model.eval(), reloaded.encoder, "cpu"
    )
    np.testing.assert_allclose(
        in_memory.rewards(prompts, [p.chosen for p in pairs]), chosen, rtol=1e-5, atol=1e-5
    )
    manifest = json.loads((tmp_path / "m" / "traitforge-reward.json").read_text())
    assert manifest["trait"] == "honesty" and manifest["max_length"] == 64


def test_small_data_trains_at_most_max_epochs_and_reports_its_steps(tmp_path):
    # 6 pairs in one batch: min_steps 20 asks for 20 epochs, max_epochs allows 3
    pairs = truthfulqa_pairs(6)
    config = RewardConfig(**{**FAST, "min_steps": 20, "max_epochs": 3.0})
    logged, progress = [], []
    result = fit(
        pairs,
        config,
        tmp_path / "m",
        "honesty",
        trait_prefix=False,
        log=logged.append,
        progress=lambda *update: progress.append(update),
    )
    assert (result.pairs, result.epochs, result.steps, result.epochs_capped) == (6, 3.0, 3, True)
    assert result.pairs_seen == 18
    assert (
        "honesty: 6 pairs x 3 epochs, about 3 steps: reward.min_steps (20) asked for 26.7 "
        "epochs; capped by reward.max_epochs (3)"
    ) in logged
    label = "training honesty (6 pairs x 3 epochs), steps"
    assert progress == [(label, n, 3) for n in range(4)]
    manifest = json.loads((tmp_path / "m" / "traitforge-reward.json").read_text())
    assert manifest["training"]["pairs"] == 6 and manifest["training"]["epochs_capped"] is True


def test_a_warm_start_continues_the_earlier_model_instead_of_a_fresh_head(tmp_path):
    pairs = truthfulqa_pairs(6)
    quiet = {"trait_prefix": False, "log": lambda _: None}
    first = fit(
        pairs,
        RewardConfig(epochs=5, learning_rate=2e-4, **FAST),
        tmp_path / "a",
        "honesty",
        **quiet,
    )
    # a step too small to move anything: the continued model scores as the one it started from
    still = RewardConfig(epochs=1, learning_rate=1e-12, **FAST)
    continued = fit(pairs, still, tmp_path / "b", "honesty", start=tmp_path / "a", **quiet)
    fit(pairs, still, tmp_path / "c", "honesty", **quiet)
    assert first.started_from is None and continued.started_from == str(tmp_path / "a")
    prompts, chosen = [p.prompt for p in pairs], [p.chosen for p in pairs]
    rewards = {n: RewardModel.load(tmp_path / n).rewards(prompts, chosen) for n in "abc"}
    np.testing.assert_allclose(rewards["b"], rewards["a"], atol=1e-4)
    assert np.abs(rewards["c"] - rewards["a"]).max() > 1e-2  # a fresh head scores otherwise
    manifest = json.loads((tmp_path / "b" / "traitforge-reward.json").read_text())
    assert manifest["training"]["started_from"] == str(tmp_path / "a")


def test_frozen_linear_models_learn_from_cached_vectors_and_reload_with_the_same_rewards(
    tmp_path,
):
    """reward.method frozen-linear on the real MiniLM vectors: above chance on unseen
    TruthfulQA questions, a set that reloads to the same rewards, and a second run that
    computes no vector the cache holds."""
    data = save_dataset(
        tmp_path / "data",
        {
            "train": truthfulqa_pairs(300) + corrigibility_pairs(40),
            "test": truthfulqa_pairs(200, skip=400),
        },
    )
    config = RewardConfig(method="frozen-linear", shared_row=True, **FAST)
    vectors = tmp_path / "embeddings.sqlite"
    logged: list[str] = []
    run = train_run(data, tmp_path / "m", config, logged.append, vectors=vectors)
    assert [f.name for f in run.fits] == ["corrigibility", "honesty", "shared"]
    assert all(f.method == "frozen-linear" for f in run.fits)
    assert "honesty: all 300 pairs fit in the 256 tokens the backbone reads (longest 29)" in logged
    assert run.evaluation is not None and run.evaluation.pairs == 200
    assert run.evaluation.per_trait["honesty"].accuracy > 0.6  # 50% is chance
    manifest = json.loads((tmp_path / "m" / "honesty" / "traitforge-reward.json").read_text())
    assert manifest["method"] == "frozen-linear" and manifest["backbone"] == "all-MiniLM-L6-v2"

    test = truthfulqa_pairs(20, skip=400)
    prompts, chosen = [p.prompt for p in test], [p.chosen for p in test]
    models = RewardModelSet(tmp_path / "m", vectors=vectors)
    reloaded = models.rewards(prompts, chosen, ["honesty"] * 20)
    np.testing.assert_array_equal(reloaded, models.rewards(prompts, chosen, ["honesty"] * 20))
    # the same weights applied to a fresh encode of the texts, without any cache: bf16 backends
    # round a text's vector by what else shares its padded batch, here 20 texts, not thousands
    uncached = RewardModelSet(tmp_path / "m").rewards(prompts, chosen, ["honesty"] * 20)
    np.testing.assert_allclose(reloaded, uncached, atol=1e-2)
    assert np.corrcoef(reloaded, uncached)[0, 1] > 0.999
    assert models.shared_row(vectors=vectors) is not None

    def stored() -> int:
        with closing(sqlite3.connect(vectors)) as db:
            return db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    before = stored()
    again = train_run(data, tmp_path / "m2", config, lambda _: None, vectors=vectors)
    assert stored() == before  # nothing new to embed: every text was cached
    assert again.evaluation is not None
    assert again.evaluation.accuracy == run.evaluation.accuracy  # same vectors, same fit


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A two-trait dataset, and per-trait models trained on it through the CLI."""
    root = tmp_path_factory.mktemp("reward")
    data = save_dataset(
        root / "data",
        {
            "train": truthfulqa_pairs(16) + corrigibility_pairs(16),
            "test": truthfulqa_pairs(10, skip=100) + corrigibility_pairs(26)[16:],
        },
    )
    config = root / "project.yaml"
    config.write_text(
        "reward:\n  epochs: 2\n  max_length: 64\n  batch_size: 8\n  bootstrap_samples: 200\n"
        "  min_steps: 0\n  min_pairs: 4\n",
        encoding="utf-8",
    )
    out = root / "models"
    result = run_cli("train", "--data", str(data), "--out", str(out), "--config", str(config))
    assert "pairs have a side longer than 64 tokens" in result.stdout  # reported up front
    # distinct pairs and epochs apart (min_steps 0: reward.epochs as configured)
    assert "honesty: 16 pairs x 2 epochs (4 steps)" in result.stdout
    return data, out, config


def test_train_writes_a_model_per_trait_with_card_report_and_eval(trained):
    _, out, _ = trained
    assert sorted(RewardModelSet(out).members) == ["corrigibility", "honesty"]
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["pairs"] == 20
    card = (out / "README.md").read_text()
    assert "Pairwise accuracy" in card and "pairs_sha256" in card
    assert 'id="accuracy"' in (out / "report.html").read_text()


def test_eval_json_contract(trained, tmp_path):
    data, out, config = trained
    result = run_cli(
        "eval", "--model", str(out), "--pairs", str(data), "--config", str(config), "--json"
    )
    report = json.loads(result.stdout)  # one JSON object, nothing else on stdout
    assert 0.0 <= report["accuracy"] <= 1.0
    low, high = report["accuracy_ci"]
    assert 0.0 <= low <= report["accuracy"] <= high <= 1.0
    assert set(report["per_trait"]) == {"honesty", "corrigibility"}
    shortcuts = report["shortcuts"]
    assert 0.0 <= shortcuts["length_baseline_accuracy"] <= 1.0
    assert -1.0 <= shortcuts["length_reward_spearman"] <= 1.0
    assert set(shortcuts["format"]) == {"whitespace", "preamble"}
    for check in shortcuts["format"].values():
        assert 0.0 <= check["flip_rate"] <= 1.0
    calibration = report["calibration"]
    assert 0.0 <= calibration["ece"] <= 1.0
    assert sum(b["count"] for b in calibration["bins"]) == 2 * report["pairs"]
    assert Path(report["report"]).is_file()

    # a JSONL file of pairs works the same way, with or without a trait
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps(
                {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "trait": "honesty"}
            )
            for p in truthfulqa_pairs(5, skip=200)
        ),
        encoding="utf-8",
    )
    from_file = json.loads(
        run_cli("eval", "--model", str(out), "--pairs", str(jsonl), "--json").stdout
    )
    assert from_file["pairs"] == 5 and list(from_file["per_trait"]) == ["honesty"]


def test_eval_names_the_bad_line_of_a_pairs_file(trained, tmp_path):
    _, out, _ = trained
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q"}\n')
    result = run_cli("eval", "--model", str(out), "--pairs", str(bad), check=False)
    assert result.returncode == 1
    assert "bad.jsonl, line 2, field 'chosen'" in result.stderr


def test_matrix_puts_each_trait_model_on_every_trait(trained):
    data, out, config = trained
    matrix = json.loads(
        run_cli(
            "eval",
            "--matrix",
            "--model",
            str(out),
            "--pairs",
            str(data),
            "--config",
            str(config),
            "--json",
        ).stdout
    )
    assert matrix["models"] == ["corrigibility", "honesty"]
    assert matrix["traits"] == ["corrigibility", "honesty"]
    for model in matrix["models"]:
        for trait in matrix["traits"]:
            assert 0.0 <= matrix["cells"][model][trait]["accuracy"] <= 1.0
    assert matrix["cells"]["honesty"]["honesty"]["pairs"] == 10
    assert (out / "matrix.json").is_file() and Path(matrix["report"]).is_file()


def test_score_stores_rewards_that_the_next_curate_selects_with(trained, tmp_path):
    _, out, _ = trained
    source = tmp_path / "candidates.jsonl"
    rows = []
    for p in truthfulqa_pairs(12, skip=300):
        rows += [
            {"prompt": p.prompt, "response": p.chosen, "true": 1},
            {"prompt": p.prompt, "response": p.rejected, "true": 0},
        ]
    source.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    config = tmp_path / "project.yaml"
    config.write_text("ingest:\n  mapping:\n    gold: {honesty: 'true'}\n", encoding="utf-8")
    ws = tmp_path / "ws"
    run_cli("ingest", "-f", "jsonl", str(source), "-w", str(ws), "-c", str(config))

    result = run_cli("score", "--model", str(out), "-w", str(ws))
    assert "Scored 24 candidates" in result.stdout
    with Workspace.open(ws).store() as store:
        reward_scores = [s for s in store.scores() if s.scorer == "reward-model.v1"]
    # each candidate is scored on the traits its prompt is about: these have honesty gold
    assert {s.trait for s in reward_scores} == {"honesty"}
    assert len(reward_scores) == 24
    assert all(0.0 < s.probability < 1.0 for s in reward_scores)

    # a re-run reads the cache and stores the same scores: nothing duplicated
    run_cli("score", "--model", str(out), "-w", str(ws))
    with Workspace.open(ws).store() as store:
        again = [s for s in store.scores() if s.scorer == "reward-model.v1"]
    assert again == reward_scores

    curated = run_cli("curate", "--budget", "4", "-w", str(ws))
    assert "reward-model.v1" in curated.stdout


def test_train_is_distributed_under_torchrun(trained, tmp_path):
    """Two processes (gloo on CPU): each trains on its shard, only rank 0 writes."""
    import sys

    data, _, config = trained
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    result = _train_in_two_processes([str(torchrun), "--nproc_per_node", "2"], data, out, config)
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [line for line in result.stdout.splitlines() if "final loss" in line]
    assert len(losses) == 4  # 2 ranks x 2 traits
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in result.stderr
    assert sorted(RewardModelSet(out).members) == ["corrigibility", "honesty"]
    assert not list(tmp_path.glob(".ddp.*"))  # no staging folder left behind


@pytest.mark.parametrize("name", ["ddp", "fsdp"])
def test_train_under_accelerate_launch_with_a_shipped_config(trained, tmp_path, name):
    """The shipped configs on two CPU processes (gloo). Without `--cpu`: with it, accelerate
    1.15 starts a single process (its simple launcher); without a GPU, each process still runs
    on the CPU because traitforge passes use_cpu. accelerate shards only on GPUs, so the FSDP
    config trains as DDP here, and traitforge says so."""
    import sys

    data, _, config = trained
    path = run_cli("accelerate-config", name).stdout.strip()
    out = tmp_path / name
    accelerate = Path(sys.executable).parent / "accelerate"
    launcher = [str(accelerate), "launch", "--config_file", path, "--num_processes", "2"]
    result = _train_in_two_processes(launcher, data, out, config)
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [line for line in result.stdout.splitlines() if "final loss" in line]
    assert len(losses) == 4  # 2 ranks x 2 traits
    ignored = "asks for FSDP, but accelerate shards only on GPUs"
    assert (ignored in result.stdout) == (name == "fsdp")
    assert sorted(RewardModelSet(out).members) == ["corrigibility", "honesty"]
    assert (out / "eval.json").is_file()
    assert not list(tmp_path.glob(f".{name}.*"))  # no staging folder left behind


def test_shared_lora_model_trains_its_head_and_merges_the_adapters(tmp_path):
    import torch
    from transformers import set_seed

    from traitforge.reward.backbone import load_for_training
    from traitforge.reward.runs import train_run

    data = save_dataset(
        tmp_path / "data",
        {"train": truthfulqa_pairs(6) + corrigibility_pairs(6), "test": truthfulqa_pairs(4, 50)},
    )
    config = RewardConfig(
        models="shared",
        lora={"enabled": True, "r": 4, "alpha": 8},
        margin_from_confidence=True,
        center_rewards=0.01,
        epochs=2,
        **FAST,
    )
    run = train_run(data, tmp_path / "out", config, log=lambda _: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]  # nothing beside it
    manifest = json.loads((tmp_path / "out" / "traitforge-reward.json").read_text())
    assert manifest["kind"] == "model" and manifest["trait_prefix"] is True
    assert manifest["traits"] == ["corrigibility", "honesty"]
    assert run.evaluation is not None and run.evaluation.pairs == 4

    set_seed(config.seed)
    fresh, _, _ = load_for_training(config.backbone)
    trained = RewardModel.load(tmp_path / "out").model
    state = trained.state_dict()
    assert not any("lora" in key for key in state)  # adapters merged into plain weights
    # the head was trained in full (modules_to_save), not left at its random init
    assert not torch.allclose(fresh.classifier.weight, state["classifier.weight"])
    # LoRA leaves the embeddings alone; the adapted attention weights moved
    assert torch.equal(
        fresh.bert.embeddings.word_embeddings.weight,
        state["bert.embeddings.word_embeddings.weight"],
    )
    query = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(fresh.state_dict()[query], state[query])


def test_augmented_training_counts_its_pairs_leaves_the_test_split_and_adds_a_shared_row(
    tmp_path,
):
    from traitforge.reward.runs import matrix_run, train_run

    test = truthfulqa_pairs(6, skip=200) + corrigibility_pairs(30)[24:]
    data = save_dataset(
        tmp_path / "data",
        {"train": truthfulqa_pairs(8) + corrigibility_pairs(8), "test": test},
    )
    # min_steps 4 at batch 8: 4 epochs of 8 pairs; counted on all 48 pairs it would be 1
    settings = {**FAST, "min_steps": 4}
    config = RewardConfig(augment=["cross-prompt", "style"], shared_row=True, epochs=1, **settings)
    logged: list[str] = []
    run = train_run(data, tmp_path / "out", config, log=logged.append)
    out = tmp_path / "out"
    assert (
        "training honesty: 8 pairs + 8 augmented:cross-prompt, 16 augmented:style-causal, "
        "16 augmented:style-neutral on all-MiniLM-L6-v2" in logged
    )
    fits = {f.name: f for f in run.fits}
    assert sorted(fits) == ["corrigibility", "honesty", "shared"]
    assert fits["honesty"].pairs == 8 * 6
    # epochs count passes over the exported pairs: the counterfactual ones come along
    assert fits["honesty"].epochs == 4 and fits["shared"].epochs == 2
    # these corrigibility pairs answer " (A)" or " (B)": another prompt's answer is the same
    # text as one of this pair's, so it teaches nothing and is not added
    assert fits["corrigibility"].augmented == {
        "augmented:style-causal": 16,
        "augmented:style-neutral": 16,
    }
    assert fits["shared"].pairs == 8 * 6 + 8 * 5
    # the test split is scored as exported: no counterfactual pair reaches it
    assert run.evaluation is not None and run.evaluation.pairs == len(test)
    card = (out / "README.md").read_text()
    assert "honesty: 8 augmented:cross-prompt, 16 augmented:style-causal" in card
    models = RewardModelSet(out)
    assert sorted(models.members) == ["corrigibility", "honesty"]  # routing ignores the row
    matrix = matrix_run(out, test, config)
    assert matrix.models == ["corrigibility", "honesty", "shared"]
    assert matrix.cells["shared"]["honesty"].pairs == 6


def _train_in_two_processes(
    launcher: list[str], data: Path, out: Path, config: Path
) -> subprocess.CompletedProcess[str]:
    """`traitforge train` under a launcher command that starts two processes."""
    command = [*launcher, "-m", "traitforge.cli", "train", "--data", str(data), "--out", str(out)]
    return subprocess.run(
        [*command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        env=cli_env(),
    )
