"""`curate --engine ray` on a local Ray cluster stores what the local engine stores.

The test starts a 2-CPU cluster itself (`ray.init(num_cpus=2)`), and the CLI joins it through
RAY_ADDRESS, as a user's run joins their cluster. Both engines curate the same slice of the
bundled TruthfulQA in their own workspace, and the stores and embedding caches must agree:
the same model embeds the same texts, and the same trained classifiers score the same rows.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import cli_env, run_cli
from tests.helpers.paths import TRUTHFULQA
from traitforge.workspace import Store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTIONS = 30  # ~250 candidates: enough labels of each class to train, quick on 2 cores
BUDGET = "12"
TOLERANCE = 1e-5  # float32 vectors from differently composed batches


@pytest.fixture(scope="module")
def cluster():
    import ray

    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def curated(tmp_path_factory, cluster) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("ray-engine")
    with TRUTHFULQA.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))[:QUESTIONS]
    data = folder / "TruthfulQA.csv"
    with data.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    local, remote = folder / "local", folder / "ray"
    for ws in (local, remote):
        run_cli("ingest", "-w", str(ws), "--format", "truthfulqa", str(data))
    run_cli("curate", "-w", str(local), "--budget", BUDGET)
    result = run_cli(
        "curate",
        "-w",
        str(remote),
        "--budget",
        BUDGET,
        "--engine",
        "ray",
        env=cli_env({"RAY_ADDRESS": cluster}),
    )
    return {"local": local, "ray": remote, "result": result}


def _vectors(ws: Path) -> dict[tuple[str, str], np.ndarray]:
    with sqlite3.connect(ws / "embeddings.sqlite") as db:
        rows = db.execute("SELECT model, text_hash, vector FROM vectors").fetchall()
    return {(m, k): np.frombuffer(v, dtype=np.float32) for m, k, v in rows}


def test_ray_engine_embeds_the_same_texts_to_the_same_vectors(curated):
    local, remote = _vectors(curated["local"]), _vectors(curated["ray"])
    assert len(local) > QUESTIONS  # prompts and responses
    assert local.keys() == remote.keys()
    worst = max(float(np.abs(local[k] - remote[k]).max()) for k in local)
    assert worst < TOLERANCE
    assert not (curated["ray"] / "ray-shards").exists() or not any(
        (curated["ray"] / "ray-shards").iterdir()
    )  # the shards are removed once their results are in the cache


def test_ray_engine_stores_the_same_flags_duplicates_scores_and_tasks(curated):
    with Store(curated["local"] / "store.sqlite") as a, Store(curated["ray"] / "store.sqlite") as b:
        assert sorted(f.model_dump_json() for f in a.flags()) == sorted(
            f.model_dump_json() for f in b.flags()
        )
        marks = [
            {(d.candidate_id, d.representative_id, d.scope): d.similarity for d in s.duplicates()}
            for s in (a, b)
        ]
        assert marks[0].keys() == marks[1].keys()
        assert all(abs(marks[0][k] - marks[1][k]) < TOLERANCE for k in marks[0])
        scores = [
            {(s.candidate_id, s.scorer, s.trait): s.score for s in st.scores()} for st in (a, b)
        ]
        assert {scorer for _, scorer, _ in scores[0]} == {"embedding-logreg.v1", "linguistic.v1"}
        assert scores[0].keys() == scores[1].keys()
        assert all(abs(scores[0][k] - scores[1][k]) < TOLERANCE for k in scores[0])
        tasks = [sorted(t.model_dump_json() for t in s.tasks()) for s in (a, b)]
        assert len(tasks[0]) == int(BUDGET)
        assert tasks[0] == tasks[1]


def test_ray_engine_keeps_the_cli_output_clean_and_the_config_unchanged(curated):
    result = curated["result"]
    output = result.stdout + result.stderr
    assert "computed:" in result.stdout  # the usual summary
    for noise in ("INFO", "WARNING", "Ray", "ray.", "(MapWorker", "Traceback"):
        assert noise not in output, output
    # --engine is for one run: the workspace's saved config keeps the default.
    assert "engine: local" in (curated["ray"] / "config.yaml").read_text(encoding="utf-8")


def test_ray_engine_runs_the_embed_and_score_actors_on_the_cluster(curated):
    # The GCS's actor table, dead actors included (the public state API needs the dashboard,
    # which the test's cluster does not start): without it, a run that quietly stayed local
    # would pass the equality tests above.
    import ray._private.state

    names = [a["ActorClassName"] for a in ray._private.state.actors().values()]
    assert any("MapBatches(EmbedActor)" in n for n in names), names
    assert any("MapBatches(ScoreActor)" in n for n in names), names
