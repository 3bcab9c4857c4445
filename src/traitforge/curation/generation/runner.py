"""`ingest --format generate`: sample N responses per prompt of a file into the store.

Each (prompt, backend, model, sampling parameters, sample index, seed) is one unit of work,
keyed by a content hash. A prompt's units are stored together with their keys in one
transaction, so a killed run loses at most the prompts in flight, and a re-run skips every
unit whose key is recorded.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitforge.curation.generation.base import (
    STAGE,
    Generator,
    Sample,
    SampleRequest,
    SamplingParams,
    chat_messages,
    sample_seed,
    work_key,
)
from traitforge.curation.generation.endpoint import EndpointGenerator
from traitforge.curation.generation.local import LocalGenerator
from traitforge.curation.ingest import IngestReport, no_rows_warning
from traitforge.curation.progress import FileProgress
from traitforge.curation.quarantine import Quarantine
from traitforge.curation.sources import file_sha256
from traitforge.curation.sources.base import require_file
from traitforge.curation.sources.mapped import csv_rows, jsonl_rows, row_to_candidate
from traitforge.errors import InputError, TraitforgeError
from traitforge.schemas import (
    Candidate,
    FieldMapping,
    GenerationConfig,
    ProjectConfig,
    Prompt,
)
from traitforge.workspace import Store

FORMAT = "generate"
SOURCE = "generated"
EMPTY = "empty response"
DUPLICATE = "duplicate prompt"

# A prompts file is read with the same mapping as a candidates file, minus the response: the
# row parser needs one, so it gets this placeholder column that no real file has.
_PLACEHOLDER = "\x00traitforge-placeholder-response"


@dataclass
class GenerationReport(IngestReport):
    """An ingest report whose rows are prompts; `new`/`present` count generated candidates."""

    backend: str = ""
    model: str = ""
    samples_requested: int = 0
    samples_done_before: int = 0
    samples_generated: int = 0
    empty: int = 0


@dataclass(frozen=True)
class PromptRow:
    """One row of a prompts file, validated by the same parser as candidate files."""

    line: int | str
    prompt: Prompt
    prompt_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    traits: list[str] = field(default_factory=list)  # stated by the row: its samples' traits


@dataclass
class _PromptWork:
    row: PromptRow
    requests: list[SampleRequest]
    results: list[tuple[SampleRequest, Sample]] = field(default_factory=list)


def make_generator(config: GenerationConfig) -> Generator:
    """The backend named by the config. Nothing is loaded or contacted until `setup()`."""
    if config.backend == "openai":
        return EndpointGenerator(config)
    return LocalGenerator(config)


def read_prompts(
    path: Path, mapping: FieldMapping, known_traits: Sequence[str] | None = None
) -> Iterator[PromptRow | InputError]:
    """Prompt rows of a .jsonl(.gz) or .csv file (by extension), per `ingest.mapping`."""
    require_file(path, FORMAT, "prompts file", "*.jsonl")
    name = path.name.lower()
    if name.endswith((".jsonl.gz", ".jsonl")):
        rows = jsonl_rows(path)
    elif name.endswith(".csv"):
        rows = csv_rows(path)
    else:
        raise InputError(
            path,
            None,
            None,
            expected="a prompts file ending in .jsonl, .jsonl.gz or .csv",
            received=f"a file named {path.name!r}",
            fix="convert the prompts to JSONL or CSV with a prompt column (ingest.mapping.prompt)",
        )
    return _prompt_rows(path, mapping, rows, known_traits)


def _prompt_rows(
    path: Path,
    mapping: FieldMapping,
    rows: Iterator[tuple[int, dict[str, Any] | InputError]],
    known_traits: Sequence[str] | None,
) -> Iterator[PromptRow | InputError]:
    prompt_mapping = mapping.model_copy(
        update={"response": _PLACEHOLDER, "gold": {}, "model": None, "source": None}
    )
    for line, row in rows:
        if isinstance(row, InputError):
            yield row
            continue
        # A candidates file may serve as a prompts file: its old responses are not metadata.
        row = {k: v for k, v in row.items() if k != mapping.response}
        try:
            parsed = row_to_candidate(
                {**row, _PLACEHOLDER: "-"}, prompt_mapping, path, line, known_traits
            )
        except InputError as e:
            yield _without_placeholder(e)
            continue
        yield PromptRow(line, parsed.prompt, parsed.prompt_id, parsed.metadata, parsed.traits)


def _without_placeholder(error: InputError) -> InputError:
    """The parser lists a row's columns when the prompt column is missing: hide ours."""
    received = error.received.replace(f"{_PLACEHOLDER!r}, ", "").replace(repr(_PLACEHOLDER), "")
    if received == error.received:
        return error
    return InputError(error.path, error.line, error.field, error.expected, received, error.fix)


def generate_file(
    store: Store,
    config: ProjectConfig,
    path: Path,
    quarantine_dir: Path,
    skip_invalid: bool = False,
    generator: Generator | None = None,
    progress: FileProgress | None = None,
) -> GenerationReport:
    """Sample `curation.generation.n` responses for every prompt in `path` into `store`.

    Every row is read and checked before the first sample, so a bad row in strict mode costs
    no model time. A generator passed in is set up here when there is work and left open for
    the caller; one built from the config is closed here.
    """
    settings = config.curation.generation
    owned = generator is None
    generator = generator if generator is not None else make_generator(settings)
    report = GenerationReport(
        path=path, format=FORMAT, backend=generator.backend, model=generator.model
    )
    quarantine = Quarantine(path, report.reasons)
    try:
        # A strict-mode error raises here, before anything is sampled or written.
        plan = _plan(store, config, generator, path, skip_invalid, report, quarantine)
        if report.rows_read == 0:
            report.warnings.append(no_rows_warning(path))
        if progress is not None:
            progress(report.rows_read - len(plan))
        try:
            if plan:
                generator.setup()
                _run(store, generator, path, plan, report, quarantine, progress)
            with store.transaction():
                store.record_ingest(file_sha256(path), FORMAT, str(path), report.counts())
        finally:
            # Written even when generation stops: the empty responses recorded so far are
            # already marked done, and this file is the only trace of them. Merged into the
            # file of earlier runs: a re-run skips the units already done.
            report.quarantine = quarantine.write(
                quarantine_dir, file_sha256(path), stage=FORMAT, merge=True
            )
    finally:
        if owned:
            generator.close()
    return report


def _plan(
    store: Store,
    config: ProjectConfig,
    generator: Generator,
    path: Path,
    skip_invalid: bool,
    report: GenerationReport,
    quarantine: Quarantine,
) -> list[_PromptWork]:
    settings = config.curation.generation
    params = SamplingParams.from_config(settings)
    done = store.done_keys(STAGE)
    first_line: dict[str, int | str] = {}
    plan = []
    for row in read_prompts(path, config.ingest.mapping, [t.name for t in config.traits]):
        report.rows_read += 1
        if isinstance(row, InputError):
            if not skip_invalid:
                raise row
            report.rows_rejected += 1
            quarantine.reject(row)
            continue
        messages = chat_messages(row.prompt)
        # The same prompt twice would be the same units of work: sample it once.
        first = first_line.setdefault(json.dumps(messages, sort_keys=True), row.line)
        if first != row.line:
            report.rows_skipped += 1
            quarantine.skip(row.line, f"{DUPLICATE}: same as line {first}")
            continue
        requests = []
        for index in range(settings.n):
            seed = sample_seed(settings.seed, index)
            key = work_key(generator.backend, generator.model, messages, params, index, seed)
            report.samples_requested += 1
            if key in done:
                report.samples_done_before += 1
            else:
                requests.append(SampleRequest(key, messages, params, index, seed))
        if requests:
            plan.append(_PromptWork(row, requests))
    return plan


def _run(
    store: Store,
    generator: Generator,
    path: Path,
    plan: list[_PromptWork],
    report: GenerationReport,
    quarantine: Quarantine,
    progress: FileProgress | None,
) -> None:
    owner = {request.key: work for work in plan for request in work.requests}
    finished = report.rows_read - len(plan)
    requests = (request for work in plan for request in work.requests)
    try:
        for request, sample in _samples(generator, requests):
            work = owner[request.key]
            work.results.append((request, sample))
            if len(work.results) == len(work.requests):
                _store_prompt(store, generator, path, work, report, quarantine)
                finished += 1
                if progress is not None:
                    progress(finished)
    except TraitforgeError as e:
        stored = finished - (report.rows_read - len(plan))
        raise TraitforgeError(
            f"{path}: generation stopped after {stored} of {len(plan)} prompts: {e}. The "
            "finished prompts are stored; run the same command again to resume from there"
        ) from e


def _samples(
    generator: Generator, requests: Iterable[SampleRequest]
) -> Iterator[tuple[SampleRequest, Sample]]:
    """Results as they complete. Requests are submitted in a bounded window rather than all at
    once, so a huge prompts file does not become a huge queue of futures, and a killed run has
    at most the window in flight."""
    if generator.concurrency <= 1:
        for request in requests:
            yield request, generator.generate(request)
        return
    window = 2 * generator.concurrency
    pending: dict[Future[Sample], SampleRequest] = {}
    todo = iter(requests)
    with ThreadPoolExecutor(generator.concurrency, thread_name_prefix="traitforge-gen") as pool:
        try:
            while True:
                for request in itertools.islice(todo, window - len(pending)):
                    pending[pool.submit(generator.generate, request)] = request
                if not pending:
                    return
                completed, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in completed:
                    yield pending.pop(future), future.result()
        finally:
            # On an error (or an interrupted consumer) drop what has not started; the pool
            # then waits only for requests already on the wire.
            for future in pending:
                future.cancel()


def _store_prompt(
    store: Store,
    generator: Generator,
    path: Path,
    work: _PromptWork,
    report: GenerationReport,
    quarantine: Quarantine,
) -> None:
    """A prompt's candidates and its units' keys, in one transaction."""
    row = work.row
    candidates = []
    for request, sample in sorted(work.results, key=lambda result: result[0].sample_index):
        provenance = {
            "backend": generator.backend,
            "model": generator.model,
            **request.params.as_dict(),
            "seed": request.seed,
            "sample_index": request.sample_index,
            "work_key": request.key,
            "finish_reason": sample.finish_reason,
            **sample.details,
            "prompts_file": path.name,
            "prompt_line": row.line,
        }
        if not sample.text.strip():
            # Never a candidate. Its key is still marked done: the unit is deterministic
            # (same prompt, parameters and seed), so asking again would mostly give the same
            # empty text, and a run that retried it would never finish clean. It is counted
            # and quarantined instead; raise n or change the seed to sample more.
            report.empty += 1
            quarantine.skip(
                row.line, f"{EMPTY}: sample {request.sample_index}", generation=provenance
            )
            continue
        candidates.append(
            Candidate.model_validate(
                {
                    "prompt": row.prompt,
                    "prompt_id": row.prompt_id,
                    "response": sample.text,
                    "source": SOURCE,
                    "model": generator.model,
                    "metadata": {**row.metadata, "generation": provenance},
                    "traits": row.traits,
                }
            )
        )
    with store.transaction():
        new, present = store.add_candidates(candidates)
        store.mark_done(STAGE, [request.key for request, _ in work.results])
    report.new += new
    report.present += present
    report.samples_generated += len(work.results)
