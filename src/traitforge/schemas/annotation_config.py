"""Config of annotation: the backend (Argilla), simulated annotators, agreement and aggregation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(extra="forbid", frozen=True)
# Ports the embedded server may take: below 1024 a port needs root.
PORTS = range(1024, 65536)


class ArgillaConfig(BaseModel):
    """The Argilla backend. An external server comes from ARGILLA_API_URL / ARGILLA_API_KEY;
    without them traitforge uses its embedded server in the workspace."""

    model_config = _FROZEN

    port: int = Field(
        6900, ge=PORTS.start, le=PORTS.stop - 1, description="Port of the embedded server."
    )
    workspace: str = Field("traitforge", description="Argilla workspace holding the datasets.")
    dataset: str = Field(
        "traitforge-{trait}-k{k}",
        description="Dataset name; {trait} and {k} are filled from each task.",
    )
    min_submitted: int = Field(
        2, ge=1, le=20, description="Annotators who must submit each record (overlap)."
    )
    batch_size: int = Field(200, ge=1, le=5000, description="Records sent per request.")
    concurrency: int = Field(4, ge=1, le=64, description="Requests in flight while pushing.")
    retries: int = Field(5, ge=0, le=20, description="Retries per request, with backoff.")
    server_workers: int = Field(
        1,
        ge=1,
        le=16,
        description="Processes of the embedded server, sharing its port. More than one serves "
        "several requests at once (a push's concurrent batches, annotators' pages) on a "
        "machine with cores to spare; SQLite still writes one batch at a time. Takes effect "
        "when the server starts (`traitforge serve --stop`, then `traitforge serve`).",
    )


class LabelStudioConfig(BaseModel):
    """The Label Studio backend. An existing server comes from LABEL_STUDIO_URL /
    LABEL_STUDIO_API_KEY; without them traitforge runs its own in the workspace."""

    model_config = _FROZEN

    project: str = Field(
        "traitforge-{trait}-k{k}",
        description="Project title; {trait} and {k} are filled from each task.",
    )
    min_submitted: int = Field(
        2,
        ge=1,
        le=20,
        description="Annotators who answer each task: one task copy is pushed per annotator "
        "(the open-source edition has no overlap of its own).",
    )
    port: int | None = Field(
        None,
        ge=PORTS.start,
        le=PORTS.stop - 1,
        description="Port of traitforge's own server. Unset: the port it had last time, when "
        "that is free, so its links keep working; else a free one.",
    )
    batch_size: int = Field(200, ge=1, le=5000, description="Tasks sent per import request.")
    retries: int = Field(5, ge=0, le=20, description="Retries per request, with backoff.")


class SimulationConfig(BaseModel):
    """Simulated annotators answer from gold labels: for demos, tests and benchmarks only."""

    model_config = _FROZEN

    noise: float = Field(0.1, ge=0.0, le=1.0, description="Chance of answering at random.")
    position_bias: float = Field(
        0.05, ge=0.0, le=1.0, description="Chance of picking the first option regardless."
    )
    length_bias: float = Field(
        0.05, ge=0.0, le=1.0, description="Chance of picking the longest response regardless."
    )
    seed: int = Field(0)


class AggregationConfig(BaseModel):
    model_config = _FROZEN

    method: Literal["majority", "bradley-terry", "noisy-bradley-terry"] = Field(
        "bradley-terry",
        description="How several annotators' answers become one preference: majority vote, "
        "or Bradley-Terry / NoisyBradleyTerry (crowd-kit) scores over each task's rankings.",
    )
    min_agreement: float = Field(
        0.7,  # on pair tasks a coin-flipper agrees with the consensus about half the time
        ge=0.0,
        le=1.0,
        description="Annotators whose agreement with the consensus is below this are flagged.",
    )
    min_gold_accuracy: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Annotators below this accuracy on gold checks are flagged.",
    )
    exclude_flagged: bool = Field(
        False, description="Leave flagged annotators' answers out of aggregation."
    )


class AnnotationConfig(BaseModel):
    model_config = _FROZEN

    backend: Literal["argilla", "label-studio"] = Field(
        "argilla", description="The annotation tool tasks are pushed to and judgements pulled from."
    )
    layout: Literal["stacked", "side-by-side"] = Field(
        "stacked",
        description=(
            "How a record shows its responses: 'stacked' one under another (markdown rendered), "
            "'side-by-side' in columns next to each other (plain text, for long responses). "
            "Applies to datasets created from now on; an existing dataset keeps its layout."
        ),
    )
    argilla: ArgillaConfig = Field(default_factory=ArgillaConfig)
    label_studio: LabelStudioConfig = Field(default_factory=LabelStudioConfig)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    aggregation: AggregationConfig = Field(default_factory=AggregationConfig)
