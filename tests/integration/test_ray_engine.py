"""`curate --engine ray` on a local Ray cluster stores what the local engine stores.

The test starts a 2-CPU cluster itself (`ray.init(num_cpus=2)`), and the CLI joins it through
RAY_ADDRESS, as a user's run joins their cluster. Both engines curate the same slice of the
bundled TruthfulQA in their own workspace, and the stores must agree: the same trained
classifiers score the same rows, the same search finds the same duplicates, the same tasks are
chosen. The Ray run embeds on the cluster; the local run then starts from a copy of its vectors,
because vectors from differently composed batches differ in the 7th digit (TOLERANCE) and a
classifier refit on them moves its scores by about ten times that, which could reorder a tie in
selection: the engines are compared on the same inputs, and Ray's vectors against a local
encode of the same texts.
The slice holds boilerplate answered to several questions ("I have no comment"), so the
corpus-scope search, on Ray a blocked search (one block: fewer texts than ONE_BLOCK_BELOW), has
duplicates to find; the same search with several blocks is run on the cluster directly.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import cli_env, run_cli
from tests.helpers.paths import TRUTHFULQA
from traitforge.curation import ray_engine
from traitforge.curation.linguistic import CACHE_PREFIX
from traitforge.curation.sharded_dedup import (
    ONE_BLOCK_BELOW,
    block_pairs,
    merge_pairs,
    plan_blocks,
    split_by_block,
)
from traitforge.workspace import Store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTIONS = 30  # ~250 candidates: enough labels of each class to train, quick on 2 cores
# From question 60 on: 7 of the next 30 accept "I have no comment" (the first 30: one), so the
# slice has corpus duplicates for the engines to agree on.
FIRST = 60
BUDGET = "12"
# float32 vectors from differently composed batches. The engines are compared on PyTorch's
# vectors: in bf16 (the CPU default, OpenVINO) the batch a text shares moves its vector in the
# 4th digit, which is the backend's doing, not the engine's.
TOLERANCE = 1e-5
TORCH_EMBEDDINGS = (
    "    device: auto\n    backend: auto\n",
    "    device: auto\n    backend: torch\n",
)


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
        rows = list(csv.DictReader(f))[FIRST : FIRST + QUESTIONS]
    data = folder / "TruthfulQA.csv"
    with data.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    local, remote = folder / "local", folder / "ray"
    for ws in (local, remote):
        run_cli("ingest", "-w", str(ws), "--format", "truthfulqa", str(data))
        config = ws / "config.yaml"
        text = config.read_text(encoding="utf-8")
        assert TORCH_EMBEDDINGS[0] in text
        config.write_text(text.replace(*TORCH_EMBEDDINGS), encoding="utf-8")
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
    with (
        sqlite3.connect(remote / "embeddings.sqlite") as source,
        sqlite3.connect(local / "embeddings.sqlite") as copy,
    ):
        source.backup(copy)
    local_result = run_cli("curate", "-w", str(local), "--budget", BUDGET)
    return {"local": local, "ray": remote, "result": result, "local_result": local_result}


def _vectors(ws: Path) -> dict[tuple[str, str], np.ndarray]:
    """The sentence vectors in the workspace's cache; it also holds linguistic feature rows."""
    with sqlite3.connect(ws / "embeddings.sqlite") as db:
        rows = db.execute("SELECT model, text_hash, vector FROM vectors").fetchall()
    return {
        (m, k): np.frombuffer(v, dtype=np.float32)
        for m, k, v in rows
        if not m.startswith(CACHE_PREFIX)
    }


def test_ray_engine_embeds_the_same_texts_to_the_same_vectors(curated):
    from traitforge.curation.embeddings import Embedder, text_key
    from traitforge.curation.scorers.features import prompt_texts
    from traitforge.schemas import EmbeddingConfig

    with Store(curated["ray"] / "store.sqlite") as store:
        candidates = list(store.candidates())
    texts = sorted({c.response for c in candidates} | set(prompt_texts(candidates)))
    assert len(texts) > QUESTIONS  # prompts and responses
    remote = _vectors(curated["ray"])
    assert {k for _, k in remote} == {text_key(t) for t in texts}
    local = Embedder(EmbeddingConfig(backend="torch")).embed(texts)
    model = {m for m, _ in remote}.pop()
    ray_rows = np.stack([remote[(model, text_key(t))] for t in texts])
    assert np.abs(local - ray_rows).max() < TOLERANCE
    # The local run embedded nothing: it compared engines on Ray's vectors.
    assert "computed: 0" in curated["local_result"].stdout, curated["local_result"].stdout
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
        corpus = [k for k in marks[0] if k[2] == "corpus"]
        assert len(corpus) > 0  # equal marks mean something only if there are some
        assert len(list(a.candidates())) < ONE_BLOCK_BELOW  # the CLI run searched one block
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


def _operators() -> list[str]:
    """Operator names of every Ray Data dataset the cluster ran (Ray Data's stats actor)."""
    import ray

    stats = ray.get_actor("datasets_stats_actor", namespace="_dataset_stats_actor")
    datasets = ray.get(stats.get_datasets.remote())
    return [op for dataset in datasets.values() for op in dataset["operators"]]


def test_ray_engine_searches_corpus_duplicates_on_the_cluster(curated):
    # The block search runs as Ray Data tasks, which the actor table does not list.
    operators = _operators()
    assert any("assign_blocks" in op for op in operators), operators
    assert any("pairs_in_block" in op for op in operators), operators


def test_the_ray_block_search_with_several_blocks_equals_the_local_one(curated, tmp_path):
    vectors = np.stack(list(_vectors(curated["ray"]).values()))
    assert len(vectors) > 200
    blocks = plan_blocks(vectors, seed=0, blocks=8)
    threshold = 0.8  # low enough that pairs straddle blocks
    a, b = ray_engine.ray_block_pairs(vectors, threshold, blocks, 2, tmp_path)
    ids = [str(row) for row in range(len(vectors))]
    parts = split_by_block(ids, vectors, blocks.assign(vectors, 2))
    local = merge_pairs(block_pairs(i, v, threshold) for i, v in parts.values())
    expected = sorted(tuple(sorted((int(x), int(y)))) for x, y, _ in local)
    assert len(expected) > 100
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == expected
    assert not any(tmp_path.iterdir())  # the shards and their folder are removed


def test_many_shards_on_two_cpus_embed_without_hanging(cluster, tmp_path, monkeypatch):
    """Several shards on a 2-CPU cluster: with a pool of two CPU actors Ray Data scheduled no
    read and the run hung (a 12k-candidate curate never finished)."""
    from traitforge.curation.embeddings import Embedder, EmbeddingCache
    from traitforge.schemas import EmbeddingConfig

    monkeypatch.setattr(ray_engine, "SHARD_ROWS", 8)
    with TRUTHFULQA.open(encoding="utf-8-sig", newline="") as f:
        texts = [row["Question"] for row in list(csv.DictReader(f))[:40]]
    config = EmbeddingConfig(backend="torch")  # see TOLERANCE
    with EmbeddingCache(tmp_path / "embeddings.sqlite") as cache:
        vectors = ray_engine.RayEmbedder(config, cache).embed(texts)
    assert len(list((tmp_path / ray_engine.SHARD_FOLDER).glob("*.parquet"))) == 0  # cleaned up
    local = Embedder(config).embed(texts)
    assert np.abs(vectors - local).max() < TOLERANCE
