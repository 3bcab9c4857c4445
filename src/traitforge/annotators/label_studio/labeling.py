"""The Label Studio labeling config of one project, generated from the traits it asks about.

One project per task trait and number of candidates k, as one Argilla dataset
(`traitforge.annotators.records.DatasetLayout` names the questions; the wording functions
there word them here too, so both backends ask the same questions):

- the prompt (`Text` ``prompt``), then the candidates (`Text` ``response_a`` ..) in columns next
  to each other (``annotation.layout: side-by-side``) or one under another (``stacked``), in
  the task's shown order (`traitforge.annotators.label_studio.tasks`). `Text` shows its data
  as plain text, so no task text is ever markup.
- the overall preference on the task trait:
  k == 2: `Pairwise` ``preference`` over the two response texts (the annotator clicks the
  better one; its result says "left" or "right"), and a `Choices` ``tie`` with the one choice
  "Tie" (Pairwise has no tie, and a tie is an answer of its own, as in Argilla);
  k > 2: `Ranker` ``ranking`` over a `List` ``responses`` holding one item per response, with
  one `Bucket` per place (``rank_1`` "1st (best)" .. ``rank_k``): the annotator drags each
  response into its place, and responses dropped into the same place are tied, as equal ranks
  are on Argilla. (A Ranker without buckets only orders, so it could not hold a tie.)
- optional `Rating` ``rating_{trait}_{letter}`` per rated trait and response. Label Studio
  ratings are stars 1..maxRating, so a trait's scale min..max is shown as 1..(max - min + 1)
  stars and the header says what the ends mean.
- optional `TextArea` ``rationale``.

Every text of a trait (name, description, adjective, anchors) reaches the XML through
ElementTree, which escapes it for attributes and text; every name is checked to be one
Label Studio can address (`toName` lists names separated by commas). The trait guidelines
become the project's instructions (`expert_instruction`, HTML): the Markdown rendered by
markdown-it with raw HTML off, so a rubric's own "<tags>" show as text and its hard-wrapped
lines join into paragraphs, as Argilla shows the same guidelines.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from markdown_it import MarkdownIt

from traitforge.annotators.records import (
    PREFERENCE,
    PROMPT_FIELD,
    RANKING,
    RATIONALE,
    DatasetLayout,
    preference_description,
    preference_title,
    rating_ask,
    rating_question,
    trait_rubric,
)
from traitforge.schemas import TraitSpec

TIE = "tie"  # the Choices control beside a Pairwise
TIE_CHOICE = "Tie"
LIST = "responses"  # the List a Ranker orders; also its task data key
UNPLACED = "_"  # the column Label Studio keeps the responses not yet dropped into a place
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
ResultType = Literal["pairwise", "choices", "ranker", "rating", "textarea"]

_STYLE = (
    ".tf-columns{display:grid;grid-template-columns:repeat(%d,minmax(0,1fr));gap:16px;"
    "align-items:start}"
    ".tf-stack{display:flex;flex-direction:column;gap:16px}"
    ".tf-response{border:1px solid rgba(128,128,128,.35);border-radius:6px;padding:8px 12px}"
    ".tf-text{white-space:pre-wrap;overflow-wrap:anywhere}"
)
# CommonMark with raw HTML off: "<b>" in a rubric is escaped, never markup; links render.
_MARKDOWN = MarkdownIt("commonmark", {"html": False})
# How Pairwise marks the chosen response (its default is a pale green the dark theme hides).
_SELECTED = "border:2px solid #52c41a;background:rgba(82,196,26,.12)"


@dataclass(frozen=True)
class Control:
    """One control of the config, as its results must look: `type`, the `to_name`s Label
    Studio may write, the star count of a rating, and what a rating rates."""

    name: str
    type: ResultType
    to_names: frozenset[str]
    max_rating: int | None = None
    trait: str | None = None
    position: int | None = None  # the response a rating rates, in shown order


def bucket(rank: int) -> str:
    """The name of the Ranker's column for `rank` (1 = most preferred)."""
    return f"rank_{rank}"


def ranker_value(ranks: Iterable[tuple[str, int]]) -> dict[str, Any]:
    """A Ranker result's value from (Text name, rank) pairs: equal ranks share a place."""
    places: dict[int, list[str]] = {}
    for text, rank in ranks:
        places.setdefault(rank, []).append(text)
    return {"ranker": {bucket(rank): places[rank] for rank in sorted(places)}}


def bucket_title(rank: int, k: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(rank if rank < 20 else rank % 10, "th")
    end = " (best)" if rank == 1 else " (worst)" if rank == k else ""
    return f"{rank}{suffix}{end}"


@dataclass(frozen=True)
class LabelingConfig:
    """A project's labeling config (`xml`), its instructions and its controls."""

    layout: DatasetLayout
    xml: str
    instructions: str
    controls: Mapping[str, Control]

    @property
    def texts(self) -> list[str]:
        """The Text names of the responses, in shown order (also their task data keys)."""
        return list(self.layout.response_fields)


def stars(trait: TraitSpec) -> int:
    """How many stars a trait's scale takes: one per point of min..max."""
    return trait.scale.max - trait.scale.min + 1


def rating_header(trait: TraitSpec, position: int) -> str:
    """The rating question with its ends in stars: Label Studio shows no scale numbers."""
    scale = trait.scale
    low = scale.labels.get(scale.min, "least")
    high = scale.labels.get(scale.max, "most")
    return f"{rating_ask(trait, position)} (1 star = {low} … {stars(trait)} stars = {high})"


def instructions(layout: DatasetLayout, traits: Mapping[str, TraitSpec]) -> str:
    """The guidelines shown to annotators, as HTML: the task, then each trait's rubric."""
    asked = preference_title(traits[layout.trait], layout.k)
    if layout.k == 2:
        how = f"answer *{asked}* by clicking the better response, or choose *{TIE_CHOICE}* "
        how += "when you cannot tell them apart."
    else:
        how = (
            f"answer *{asked}* by dragging every response into a place, 1st the best; put "
            "responses you cannot tell apart into the same place."
        )
    intro = (
        f"# {layout.trait}: compare {layout.k} responses\n\n"
        f"Read the prompt and the {layout.k} responses, then {how} Ratings per response are "
        "optional; a pre-filled answer comes from a model and may be wrong. Responses are "
        "shown in random order."
    )
    text = "\n\n".join([intro, *(trait_rubric(traits[name]) for name in layout.rated_traits)])
    return _MARKDOWN.render(text)


def _name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r} cannot name a Label Studio tag: use letters, digits, '_' and '-' "
            "(trait names are checked to be such)"
        )
    return name


def _header(parent: ET.Element, value: str, size: int | None = None) -> None:
    attrs = {"value": value}
    if size is not None:
        attrs["size"] = str(size)
    ET.SubElement(parent, "Header", attrs)


def labeling_config(layout: DatasetLayout, traits: Mapping[str, TraitSpec]) -> LabelingConfig:
    """The config asking what `layout` asks. Raises ValueError for a trait the config lacks."""
    missing = [name for name in layout.rated_traits if name not in traits]
    if missing:
        raise ValueError(
            f"project {layout.name} asks about traits {missing}, which the project config does "
            f"not define (defined: {', '.join(sorted(traits))}); add them under traits"
        )
    spec = traits[layout.trait]
    texts = [_name(t) for t in layout.response_fields]
    controls: dict[str, Control] = {}
    root = ET.Element("View")
    style = ET.SubElement(root, "Style")
    style.text = _STYLE % layout.k
    _header(root, "Prompt")
    prompt = ET.SubElement(root, "View", {"className": "tf-text"})
    ET.SubElement(prompt, "Text", {"name": PROMPT_FIELD, "value": f"${PROMPT_FIELD}"})

    columns = "tf-columns" if layout.display == "side-by-side" else "tf-stack"
    responses = ET.SubElement(root, "View", {"className": columns})
    for position, text in enumerate(texts):
        column = ET.SubElement(responses, "View", {"className": "tf-response"})
        _header(column, f"Response {text[-1].upper()}", size=4)
        body = ET.SubElement(column, "View", {"className": "tf-text"})
        ET.SubElement(body, "Text", {"name": text, "value": f"${text}"})
        for trait in layout.rated_traits:
            rated = traits[trait]
            name = _name(rating_question(trait, position))
            _header(column, rating_header(rated, position), size=6)
            ET.SubElement(
                column,
                "Rating",
                {"name": name, "toName": text, "maxRating": str(stars(rated)), "icon": "star"},
            )
            controls[name] = Control(
                name, "rating", frozenset({text}), stars(rated), trait, position
            )

    _header(root, preference_title(spec, layout.k))
    _header(root, preference_description(spec), size=6)
    if layout.k == 2:
        pair = ",".join(texts)
        ET.SubElement(
            root, "Pairwise", {"name": PREFERENCE, "toName": pair, "selectionStyle": _SELECTED}
        )
        # Label Studio writes a Pairwise result with the control's own name as to_name.
        controls[PREFERENCE] = Control(PREFERENCE, "pairwise", frozenset({PREFERENCE, pair}))
        tie = ET.SubElement(
            root,
            "Choices",
            {"name": TIE, "toName": PROMPT_FIELD, "choice": "single", "showInline": "true"},
        )
        ET.SubElement(tie, "Choice", {"value": TIE_CHOICE})
        controls[TIE] = Control(TIE, "choices", frozenset({PROMPT_FIELD}))
    else:
        ET.SubElement(root, "List", {"name": LIST, "value": f"${LIST}", "title": "Responses"})
        ranker = ET.SubElement(root, "Ranker", {"name": RANKING, "toName": LIST})
        for rank in range(1, layout.k + 1):
            ET.SubElement(
                ranker, "Bucket", {"name": bucket(rank), "title": bucket_title(rank, layout.k)}
            )
        controls[RANKING] = Control(RANKING, "ranker", frozenset({LIST}))

    _header(root, "Why? (optional)", size=6)
    ET.SubElement(
        root,
        "TextArea",
        {
            "name": RATIONALE,
            "toName": PROMPT_FIELD,
            "rows": "3",
            "maxSubmissions": "1",
            "editable": "true",
        },
    )
    controls[RATIONALE] = Control(RATIONALE, "textarea", frozenset({PROMPT_FIELD}))
    ET.indent(root)
    return LabelingConfig(
        layout=layout,
        xml=ET.tostring(root, encoding="unicode"),
        instructions=instructions(layout, traits),
        controls=controls,
    )
