"""Generation with the real SmolLM2-135M-Instruct: in-process, and behind a real HTTP server
that speaks the OpenAI chat-completions protocol, driven through the real CLI."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env, run_cli
from tests.helpers.openai_server import OpenAIServer
from traitforge.annotators.server import free_port
from traitforge.curation.generation import (
    API_KEY_ENV,
    BASE_URL_ENV,
    STAGE,
    LocalGenerator,
    generate_file,
    sample_seed,
)
from traitforge.curation.generation import local as local_module
from traitforge.machine_cache import CACHE_ENV
from traitforge.schemas import GenerationConfig, ProjectConfig
from traitforge.workspace import Store, default_config

pytestmark = pytest.mark.integration

MODEL = "SmolLM2-135M-Instruct"
# Open-ended prompts, so that two seeds practically never write the same 12 tokens.
PROMPTS = [
    {"prompt": "Write one sentence about the sea.", "topic": "sea"},
    {
        "prompt": [
            {"role": "system", "content": "You are a candid assistant."},
            {"role": "user", "content": "Describe your favourite colour."},
        ],
        "topic": "colour",
    },
]


@pytest.fixture(scope="module")
def smol() -> LocalGenerator:
    """The packaged model, loaded once for the module (the first load on a machine also
    dequantizes the GGUF into the user's cache, which takes ~30 s on 2 cores)."""
    import torch

    # One intra-op thread: on a small shared CI box, two threads that must meet at every
    # matmul of a tiny model wait on each other whenever another process holds a core
    # (measured here: ~7 s instead of ~1 s per 12-token sample under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    generator = LocalGenerator(GenerationConfig(model=MODEL))
    generator.setup()
    yield generator
    generator.close()
    torch.set_num_threads(threads)


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS), encoding="utf-8")
    return path


def _config(**generation: object) -> ProjectConfig:
    base = default_config()
    settings = GenerationConfig.model_validate(
        {"model": MODEL, "n": 2, "max_new_tokens": 12, "seed": 3, **generation}
    )
    return base.model_copy(
        update={"curation": base.curation.model_copy(update={"generation": settings})}
    )


def _samples(store: Store) -> list[tuple[str, int, str]]:
    return sorted(
        (c.prompt_id, c.metadata["generation"]["sample_index"], c.response)
        for c in store.candidates()
    )


def test_local_backend_is_deterministic_per_seed_and_loads_from_the_cache(
    smol, prompts_file, tmp_path, monkeypatch
):
    config = _config()
    with Store(tmp_path / "first.sqlite") as store:
        report = generate_file(store, config, prompts_file, tmp_path / "q", generator=smol)
        first = _samples(store)
        candidates = list(store.candidates())
    assert report.samples_generated == 4
    # Four distinct candidates: the two seeds of each prompt really sample differently
    # (identical responses would share a candidate id and count as `present`).
    assert len(first) == 4 and report.new == 4
    for c in candidates:
        meta = c.metadata["generation"]
        assert c.model == MODEL and c.source == "generated"
        assert (meta["backend"], meta["device"], meta["max_new_tokens"]) == ("local", "cpu", 12)
        assert meta["seed"] == sample_seed(3, meta["sample_index"])
        assert 0 < meta["completion_tokens"] <= 12

    # A second, separately loaded model must come from the dequantized cache, not the GGUF.
    def no_gguf(source: object) -> None:
        raise AssertionError("the GGUF was converted again instead of read from the cache")

    monkeypatch.setattr(local_module, "_load_gguf", no_gguf)
    reloaded = LocalGenerator(GenerationConfig(model=MODEL))
    with Store(tmp_path / "second.sqlite") as store:
        generate_file(store, config, prompts_file, tmp_path / "q", generator=reloaded)
        assert _samples(store) == first  # same seeds, same responses, from a fresh store
    reloaded.close()
    cached = local_module.dequantized_folder(local_module.resolve_local_model(MODEL))
    assert "quantization_config" not in json.loads((cached / "config.json").read_text())


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, check=False, env=cli_env(env))


def _config_file(tmp_path: Path, **generation: object) -> Path:
    path = tmp_path / "project.yaml"
    settings = {"backend": "openai", "model": MODEL, "n": 2, "max_new_tokens": 12, **generation}
    path.write_text(json.dumps({"curation": {"generation": settings}}), encoding="utf-8")
    return path


def test_endpoint_backend_through_the_cli_retries_resumes_and_keeps_the_key_secret(
    smol, prompts_file, tmp_path
):
    key = "sk-test-4f1c9e"
    ws = tmp_path / "ws"
    config = _config_file(tmp_path, concurrency=2, retries=2, seed=11)
    args = ["ingest", "-w", str(ws), "-c", str(config), "--format", "generate", str(prompts_file)]
    with OpenAIServer(smol, fail_first=1, api_key=key) as server:
        env = {BASE_URL_ENV: server.base_url, API_KEY_ENV: key}
        first = _cli(args, env)
        assert first.returncode == 0, first.stderr
        # One 503 (retried after a backoff), then one request per sample.
        assert server.requests == 1 + 4
        assert "wrote 4 of 4 samples; 0 were done before" in first.stdout

        with Store(ws / "store.sqlite") as store:
            candidates = list(store.candidates())
            done = store.done_keys(STAGE)
        assert sorted(Counter(c.prompt_id for c in candidates).values()) == [2, 2]
        assert len(done) == 4
        assert sorted(c.response for c in candidates) == sorted(server.answers)
        sent = {(b["seed"], b["temperature"], b["top_p"], b["max_tokens"]) for b in server.bodies}
        assert sent == {(sample_seed(11, i), 0.8, 0.95, 12) for i in range(2)}
        assert {b["model"] for b in server.bodies} == {MODEL}
        for c in candidates:
            meta = c.metadata["generation"]
            assert c.model == MODEL and c.source == "generated" and c.metadata["topic"]
            assert meta["backend"] == "openai" and meta["served_model"] == MODEL
            assert meta["seed"] == sample_seed(11, meta["sample_index"])

        again = _cli(args, env)
        assert again.returncode == 0, again.stderr
        assert server.requests == 5  # nothing asked twice
        assert "wrote 0 of 4 samples; 4 were done before" in again.stdout
        for output in (first.stdout, first.stderr, again.stdout, again.stderr):
            assert key not in output
    with Store(ws / "store.sqlite") as store:
        assert len(list(store.candidates())) == 4


def test_endpoint_down_names_the_url_and_how_to_fix_it(prompts_file, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    ws = tmp_path / "ws"
    config = _config_file(tmp_path, retries=1)
    result = _cli(
        ["ingest", "-w", str(ws), "-c", str(config), "--format", "generate", str(prompts_file)],
        {BASE_URL_ENV: url, API_KEY_ENV: "sk-never-shown"},
    )
    message = " ".join(result.stderr.split())
    assert result.returncode == 1
    assert f"{url}/chat/completions failed 2 time(s): cannot connect" in message
    assert "Fix: start the server" in message and BASE_URL_ENV in message
    assert "stopped after 0 of 2 prompts" in message
    assert "Traceback" not in result.stderr and "sk-never-shown" not in result.stderr
    with Store(ws / "store.sqlite") as store:
        assert list(store.candidates()) == [] and store.done_keys(STAGE) == set()


def test_local_generation_through_the_cli_draws_only_our_progress_display(prompts_file, tmp_path):
    """With a fresh cache the model is dequantized, written and loaded: each step drew a tqdm
    bar on stderr beneath the rich display, which tore it apart in a terminal."""
    ws = tmp_path / "ws"
    config = tmp_path / "project.yaml"
    settings = {"model": MODEL, "n": 1, "max_new_tokens": 4}
    config.write_text(json.dumps({"curation": {"generation": settings}}), encoding="utf-8")
    result = _cli(
        ["ingest", "-w", str(ws), "-c", str(config), "--format", "generate", str(prompts_file)],
        {CACHE_ENV: str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "cache" / "models").iterdir())  # the conversion did run
    assert "wrote 2 of 2 samples" in result.stdout and "prompts.jsonl" in result.stdout
    for mark in ("it/s]", "s/it]", "%|", "\r"):  # tqdm's rate, bar and redraws
        assert mark not in result.stderr, result.stderr
