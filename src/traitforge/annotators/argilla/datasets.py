"""The Argilla datasets behind a workspace's tasks: their settings, creation, and records.

One dataset per task trait and number of candidates (`annotation.argilla.dataset` names it,
see `traitforge.annotators.records` for its question layout). The argilla SDK creates it: its
`rg.Settings` is the clearest statement of that layout. Records then travel over the REST
API (`ArgillaAPI`), each limited to what its dataset declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from traitforge.annotators.argilla.client import ArgillaAPI, ArgillaError, Connection
from traitforge.annotators.records import (
    PREFERENCE,
    PROMPT_FIELD,
    PROMPT_TEMPLATE,
    RANKING,
    RATIONALE,
    RESPONSES_FIELD,
    TIE,
    VECTOR,
    DatasetLayout,
    RecordDraft,
    group_tasks,
    preference_description,
    preference_title,
    rating_description,
    rating_title,
    side_by_side_template,
)
from traitforge.schemas import ProjectConfig, TraitSpec
from traitforge.workspace import Store


def dataset_settings(
    layout: DatasetLayout,
    traits: Mapping[str, TraitSpec],
    min_submitted: int,
    vector_dimensions: int | None,
) -> Any:
    """The layout as `rg.Settings` (needs a connected `rg.Argilla` client to exist)."""
    import argilla as rg

    trait = traits[layout.trait]
    fields: list[Any]
    if layout.display == "side-by-side":
        fields = [
            rg.CustomField(name=PROMPT_FIELD, title="Prompt", template=PROMPT_TEMPLATE),
            rg.CustomField(
                name=RESPONSES_FIELD, title="Responses", template=side_by_side_template(layout.k)
            ),
        ]
    else:
        fields = [rg.TextField(name=PROMPT_FIELD, title="Prompt", use_markdown=True)]
        fields += [
            rg.TextField(name=name, title=f"Response {name[-1].upper()}", use_markdown=True)
            for name in layout.response_fields
        ]
    title = preference_title(trait, layout.k)
    description = preference_description(trait)
    questions: list[Any] = []
    if layout.k == 2:
        questions.append(
            rg.LabelQuestion(
                name=PREFERENCE,
                title=title,
                description=description,
                labels={"A": "Response A", "B": "Response B", TIE: "Tie"},
            )
        )
    else:
        questions.append(
            rg.RankingQuestion(
                name=RANKING,
                title=title,
                description=description,
                values={name: f"Response {name[-1].upper()}" for name in layout.response_fields},
            )
        )
    # RatingQuestion, not a LabelQuestion with the anchors as labels: Argilla keeps its values
    # integers (sortable, filterable by range, what pulls and simulated annotators send), so
    # its buttons show bare numbers and the title says what the ends mean.
    for name, (rated, position) in layout.rating_questions().items():
        spec = traits[rated]
        questions.append(
            rg.RatingQuestion(
                name=name,
                title=rating_title(spec, position),
                description=rating_description(spec),
                values=list(range(spec.scale.min, spec.scale.max + 1)),
                required=False,
            )
        )
    questions.append(
        rg.TextQuestion(name=RATIONALE, title="Why? (optional)", required=False, use_markdown=False)
    )
    # Nothing that tells gold checks apart, and no hidden properties: annotators can read
    # and filter on those too (see traitforge.annotators.records).
    metadata: list[Any] = [
        rg.TermsMetadataProperty(name="source", title="source"),
        rg.TermsMetadataProperty(name="model", title="model"),
        rg.IntegerMetadataProperty(name="round", title="round"),
    ]
    vectors = (
        [rg.VectorField(name=VECTOR, title="similar prompts", dimensions=vector_dimensions)]
        if vector_dimensions
        else []
    )
    return rg.Settings(
        guidelines=layout.guidelines(traits, min_submitted),
        fields=fields,
        questions=questions,
        metadata=metadata,
        vectors=vectors,
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


def _create_dataset(
    connection: Connection,
    workspace: str,
    layout: DatasetLayout,
    traits: Mapping[str, TraitSpec],
    min_submitted: int,
    vector_dimensions: int | None,
    retries: int,
) -> None:
    import argilla as rg

    try:
        client = rg.Argilla(
            api_url=connection.api_url, api_key=connection.api_key, retries=max(retries, 1)
        )
        settings = dataset_settings(layout, traits, min_submitted, vector_dimensions)
        rg.Dataset(name=layout.name, workspace=workspace, settings=settings, client=client).create()
    except Exception as e:  # the SDK raises its own hierarchy and httpx errors
        raise ArgillaError(
            f"could not create the Argilla dataset {layout.name!r} in workspace "
            f"{workspace!r} at {connection.api_url}: {type(e).__name__}: {e}. Check the server "
            "is running and the key belongs to an owner, then run the command again"
        ) from e


@dataclass
class RemoteDataset:
    """A published dataset and what its records may carry."""

    id: str
    name: str
    question_ids: dict[str, str]
    metadata: set[str]
    vector_dimensions: int | None
    layout: DatasetLayout | None = None  # as the dataset on the server shows its records


def ensure_dataset(
    api: ArgillaAPI,
    connection: Connection,
    config: ProjectConfig,
    layout: DatasetLayout,
    vector_dimensions: int | None,
) -> RemoteDataset:
    """The layout's dataset on the server, created (or re-created from an unfinished draft)
    when needed, checked to show every field the layout needs."""
    argilla = config.annotation.argilla
    traits = {t.name: t for t in config.traits}
    try:
        layout.check_traits(traits)
    except ValueError as e:
        raise ArgillaError(str(e)) from e
    workspace_id = api.workspace_id(argilla.workspace, create=True)
    assert workspace_id is not None
    existing = api.datasets(workspace_id).get(layout.name)
    if existing is not None and existing.get("status") != "ready":
        # A push killed while the SDK was adding questions leaves an unpublished draft. Drafts
        # hold no records (only published datasets accept them): start it again.
        api.request("DELETE", f"/api/v1/datasets/{existing['id']}")
        existing = None
    if existing is None:
        _create_dataset(
            connection,
            argilla.workspace,
            layout,
            traits,
            argilla.min_submitted,
            vector_dimensions,
            argilla.retries,
        )
        existing = api.datasets(workspace_id)[layout.name]
    dataset_id = str(existing["id"])
    names = api.field_names(dataset_id)
    # A dataset keeps the layout it was made with: annotation.layout applies to new ones.
    shown = replace(layout, display="side-by-side" if RESPONSES_FIELD in names else "stacked")
    missing = set(shown.field_names) - names
    questions = api.question_ids(dataset_id)
    if missing or layout.answer_question not in questions:
        raise ArgillaError(
            f"the Argilla dataset {layout.name!r} at {api.api_url} was not made for these tasks "
            f"(missing fields {sorted(missing)} or question {layout.answer_question!r}); delete "
            "it or set annotation.argilla.dataset to a name template with {trait} and {k}"
        )
    return RemoteDataset(
        id=dataset_id,
        name=layout.name,
        question_ids=questions,
        metadata=api.metadata_names(dataset_id),
        vector_dimensions=api.vector_dimensions(dataset_id).get(VECTOR),
        layout=shown,
    )


def record_item(draft: RecordDraft, dataset: RemoteDataset) -> dict[str, Any]:
    """A draft as one item of Argilla's bulk upsert, limited to what the dataset declares."""
    item: dict[str, Any] = {
        "external_id": draft.external_id,
        "fields": draft.fields,
        "metadata": {k: v for k, v in draft.metadata.items() if k in dataset.metadata},
    }
    suggestions = [
        {
            "question_id": dataset.question_ids[s["question_name"]],
            **{k: v for k, v in s.items() if k != "question_name"},
        }
        for s in draft.suggestions
        if s["question_name"] in dataset.question_ids
    ]
    if suggestions:
        item["suggestions"] = suggestions
    if draft.vector is not None and len(draft.vector) == dataset.vector_dimensions:
        item["vectors"] = {VECTOR: draft.vector}
    return item


def dataset_names(store: Store, config: ProjectConfig) -> list[str]:
    """The datasets the workspace's tasks belong in."""
    return list(group_tasks(store.tasks(), config.annotation.argilla.dataset))
