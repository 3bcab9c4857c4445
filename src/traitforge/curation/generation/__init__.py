"""Candidate generation: sample responses to prompts from a local model or an endpoint."""

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
from traitforge.curation.generation.endpoint import (
    API_KEY_ENV,
    BASE_URL_ENV,
    EndpointGenerator,
    EndpointSettings,
)
from traitforge.curation.generation.local import LocalGenerator, resolve_local_model
from traitforge.curation.generation.runner import (
    FORMAT,
    SOURCE,
    GenerationReport,
    PromptRow,
    generate_file,
    make_generator,
    read_prompts,
)
from traitforge.http_retry import Backoff

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "FORMAT",
    "SOURCE",
    "STAGE",
    "Backoff",
    "EndpointGenerator",
    "EndpointSettings",
    "GenerationReport",
    "Generator",
    "LocalGenerator",
    "PromptRow",
    "Sample",
    "SampleRequest",
    "SamplingParams",
    "chat_messages",
    "generate_file",
    "make_generator",
    "read_prompts",
    "resolve_local_model",
    "sample_seed",
    "work_key",
]
