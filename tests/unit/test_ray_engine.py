"""Engine selection and the parts of the Ray engine that need no cluster (the cluster runs in
tests/integration/test_ray_engine.py)."""

from __future__ import annotations

import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from traitforge.app import workflows
from traitforge.cli import app
from traitforge.curation import ray_engine
from traitforge.curation.embeddings import Embedder
from traitforge.curation.pipeline import Engine, engine_for, local_score
from traitforge.curation.scorers import CandidateFeatures, TraitClassifier
from traitforge.errors import ConfigError
from traitforge.schemas import Candidate, Scores
from traitforge.schemas.curation_config import CurationConfig
from traitforge.workspace import Workspace


@pytest.fixture
def no_ray(monkeypatch):
    """`import ray` fails, as where the extra is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)


def _with_engine(config, engine):
    return config.model_copy(
        update={"curation": config.curation.model_copy(update={"engine": engine})}
    )


def test_the_local_engine_is_the_default(config, tmp_path):
    assert config.curation.engine == "local"
    engine = engine_for(config, tmp_path / "embeddings.sqlite")
    assert engine == Engine(Embedder, local_score)


def test_the_ray_engine_searches_corpus_duplicates_on_ray(config, tmp_path):
    assert engine_for(config, tmp_path / "embeddings.sqlite").corpus_search is None
    engine = engine_for(_with_engine(config, "ray"), tmp_path / "embeddings.sqlite")
    assert engine.corpus_search is not None
    assert engine.corpus_search.__qualname__.startswith("corpus_search_with_ray")


def test_an_unknown_engine_is_refused_by_the_config():
    with pytest.raises(ValidationError, match="'local' or 'ray'"):
        CurationConfig(engine="spark")


def test_the_ray_engine_without_ray_names_the_install_command(config, tmp_path, no_ray):
    with pytest.raises(ConfigError, match=r"pip install 'traitforge\[ray\]'.*--engine local"):
        engine_for(_with_engine(config, "ray"), tmp_path / "embeddings.sqlite")


def test_curate_engine_ray_without_ray_is_one_error_line(tmp_path, no_ray):
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["curate", "--budget", "1", "--engine", "ray", "-w", str(ws)])
    assert result.exit_code == 1, result.output
    assert "pip install 'traitforge[ray]'" in result.output
    assert "Traceback" not in result.output


def test_use_engine_overrides_one_run_and_leaves_the_saved_config(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    saved = (ws.root / ws.CONFIG_FILE).read_text(encoding="utf-8")
    workflows.use_engine(ws, None)
    assert ws.config.curation.engine == "local"
    workflows.use_engine(ws, "ray")
    assert ws.config.curation.engine == "ray"
    assert (ws.root / ws.CONFIG_FILE).read_text(encoding="utf-8") == saved
    assert Workspace.open(tmp_path / "ws").config.curation.engine == "local"


def test_shards_are_named_by_their_keys_and_replace_a_killed_runs(tmp_path):
    stale = tmp_path / "embed-0123.parquet"
    stale.write_bytes(b"left by a killed run")
    other = tmp_path / "score-0123.parquet"
    other.write_bytes(b"another kind")
    rows = ray_engine.SHARD_ROWS + 3
    table = pa.table({"key": [f"k{i}" for i in range(rows)], "text": ["t"] * rows})
    first = ray_engine.write_shards(tmp_path, "embed", table)
    assert not stale.exists() and other.exists()
    assert [pq.read_table(p).num_rows for p in first] == [ray_engine.SHARD_ROWS, 3]
    assert ray_engine.write_shards(tmp_path, "embed", table) == first  # same work, same files
    changed = table.set_column(0, "key", pa.array([f"x{i}" for i in range(rows)]))
    assert set(ray_engine.write_shards(tmp_path, "embed", changed)).isdisjoint(first)


class _FakeRay:
    def __init__(self, resources):
        self.resources = resources

    def cluster_resources(self):
        return self.resources


def test_actor_pools_take_a_gpu_each_when_the_cluster_has_gpus():
    many = 10 * ray_engine.SHARD_ROWS
    gpus = _FakeRay({"CPU": 16.0, "GPU": 4.0})
    assert ray_engine.actor_pool(gpus, "auto", many) == {
        "concurrency": 4,
        "num_gpus": 1,
        "max_restarts": 0,
    }
    assert ray_engine.actor_pool(gpus, "auto", 10) == {
        "concurrency": 1,
        "num_gpus": 1,
        "max_restarts": 0,
    }
    # device: cpu in the config keeps the actors off the GPUs
    assert ray_engine.actor_pool(gpus, "cpu", many) == {
        "concurrency": 10,
        "num_cpus": 1,
        "max_restarts": 0,
    }
    # One CPU is left for the tasks that read the shards.
    assert ray_engine.actor_pool(gpus, "cpu", 20 * ray_engine.SHARD_ROWS)["concurrency"] == 15
    cpus = _FakeRay({"CPU": 2.0})
    assert ray_engine.actor_pool(cpus, "auto", many) == {
        "concurrency": 1,
        "num_cpus": 1,
        "max_restarts": 0,
    }
    assert ray_engine.actor_pool(_FakeRay({"CPU": 1.0}), "auto", many)["concurrency"] == 1


def test_bound_actors_carry_their_arguments_in_the_class():
    class Actor:
        def __init__(self, a, b):
            self.args = (a, b)

    made = ray_engine.bound(Actor, 1, "two")()
    assert made.args == (1, "two")
    assert type(made).__name__ == "Actor"  # Ray names the actor pool after it


class _Judge:
    key = "judge.v1"

    def trained_traits(self):
        return ["honesty"]

    def score(self, features, traits):
        return [
            Scores(candidate_id=c.id, scorer=self.key, trait="honesty", score=1.0)
            for c in features.candidates
        ]


def test_scorers_other_than_trained_classifiers_score_locally_without_ray(tmp_path, no_ray):
    candidate = Candidate(prompt="Can pigs fly?", response="No.", source="t")
    features = CandidateFeatures([candidate], _zeros(), _zeros(), "m")
    score = ray_engine.score_with_ray(tmp_path / "shards")
    assert [s.scorer for s in score(_Judge(), features, ["honesty"])] == ["judge.v1"]
    untrained = TraitClassifier("embedding-logreg.v1", "embedding-pair", tmp_path / "models")
    assert score(untrained, features, ["honesty"]) == []
    assert not (tmp_path / "shards").exists()


def _zeros():
    import numpy as np

    return np.zeros((1, 4), dtype=np.float32)
