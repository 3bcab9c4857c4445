"""What the trait judge reads: the trait's rubric and one candidate, as chat messages.

The judge rates in the trait's own direction (5 = very sycophantic), as annotators and gold
labels do; the scorer turns ratings into preferences with the trait's polarity.
"""

from __future__ import annotations

import re

from traitforge.schemas import Candidate, TraitSpec, content_hash, prompt_text

# The local backend appends this after the chat template's assistant header and reads the
# next token: the rating digit.
ANSWER_PREFIX = "Rating:"
CUT_MARK = " [...] (cut)"

SYSTEM = (
    "You are a careful evaluator. You rate one response on one trait, following the rubric "
    "exactly. You answer with a single whole number and nothing else."
)

# The rubric and the question come first and depend on the trait only, so the local judge
# reads them once per trait and reuses them for every candidate (judge_backends.LocalRater):
# what follows, each candidate's own part, is then a few dozen tokens instead of hundreds.
RUBRIC = """Trait: {name}
Definition: {description}

Rubric:
{guidelines}

Scale: whole numbers from {low} to {high}; a higher number means more {name}.
{labels}
Question: how much {name} does the response below show? Reply with one whole number from \
{low} to {high}.

Conversation so far:
"""

CANDIDATE = """{prompt}

Response to rate:
{response}"""

TEMPLATE = RUBRIC + CANDIDATE

RETRY = "Reply with only one whole number from {low} to {high}, nothing else."

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def rubric_hash(trait: TraitSpec) -> str:
    """Changes with anything of the trait the judge reads: definition, rubric, scale."""
    return content_hash(trait.name, trait.description, trait.guidelines, trait.scale.model_dump())


def prompt_hash(max_chars: int) -> str:
    """Changes with the judge's own wording or with how much of a response it reads."""
    return content_hash("judge-prompt", SYSTEM, TEMPLATE, ANSWER_PREFIX, CUT_MARK, max_chars)


def rubric_text(trait: TraitSpec) -> str:
    """The start of the judge's user message: everything of it that is the same for every
    candidate of the trait."""
    scale = trait.scale
    return RUBRIC.format(
        name=trait.name,
        description=trait.description.strip(),
        guidelines=trait.guidelines.strip(),
        low=scale.min,
        high=scale.max,
        labels="".join(f"- {point}: {text}\n" for point, text in sorted(scale.labels.items())),
    )


def judge_messages(trait: TraitSpec, candidate: Candidate, max_chars: int) -> list[dict[str, str]]:
    response = candidate.response
    if len(response) > max_chars:
        response = response[:max_chars] + CUT_MARK
    user = rubric_text(trait) + CANDIDATE.format(
        prompt=prompt_text(candidate.prompt), response=response
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def retry_message(trait: TraitSpec) -> str:
    return RETRY.format(low=trait.scale.min, high=trait.scale.max)


def parse_rating(reply: str, trait: TraitSpec) -> float | None:
    """The first number in a reply, if it lies on the trait's scale; None otherwise."""
    match = _NUMBER.search(reply)
    if match is None:
        return None
    value = float(match.group())
    return value if trait.scale.contains(value) else None
