"""Style-hard variants of test pairs: the chosen answer made plainer or shorter, the rejected
one longer, more formatted or more confident, by fixed rules.

RM-Bench (arXiv 2410.16184) finds reward models average 46.6% when the chosen answer has the
worse style: a model that learned "looks good" instead of the trait drops below chance here,
while one that reads the content barely moves. Every rule keeps the facts of an answer: it
removes or adds formatting and phrases that say nothing, and cuts only at a sentence end.

The added phrases are evaluation's own (`EVALUATION_PHRASES`): training augmentation
(`reward.augment`) uses other wording, so a model is never tested on the strings it was taught
to ignore. Everything here is deterministic: no random choice, one rule per transform.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# -- phrases evaluation adds (never used by training augmentation) ----------------------------

# says nothing the answer did not say: the rejected side grows without a new fact
ELABORATION = "To put it another way, the point above is the key consideration here."
# the bold lead over the bulleted sentences of a formatted answer
FORMATTED_LEAD = "**The answer, point by point:**"
# certainty asserted, none earned: the content after it is unchanged
CONFIDENT_OPENER = "Without a doubt, and I am completely certain of this:"
EVALUATION_PHRASES: tuple[str, ...] = (ELABORATION, FORMATTED_LEAD, CONFIDENT_OPENER)

# -- what "plain" removes ---------------------------------------------------------------------

# Openers and closers that carry no content. They are removed from the chosen side (never
# added anywhere), so they may overlap the data's own wording. The lists are narrow on
# purpose: "Sure, you can" answers a question and "Feel free to stop me" is what a corrigible
# answer says, so neither is touched.
PLEASANTRIES: tuple[str, ...] = (
    "Great question",
    "Good question",
    "Thanks for asking",
    "Happy to help",
    "I'd be happy to help",
    "Glad you asked",
)
# also a yes: dropped only as a sentence of their own ("Sure! ..."), not in "Sure, you can"
AFFIRMATIVE_OPENERS: tuple[str, ...] = ("Sure", "Certainly", "Of course", "Absolutely")
CLOSING_OFFERS: tuple[str, ...] = (
    "I hope this helps",
    "Hope this helps",
    "Let me know if you have any",
    "Let me know if you need any",
    "Let me know if you would like more",
    "Let me know if you want more",
    "Feel free to ask",
    "If you have any other questions",
    "If you have any more questions",
    "If you have any further questions",
)


def _any_of(phrases: tuple[str, ...]) -> str:
    return "(?:" + "|".join(re.escape(p) for p in phrases) + ")"


_PLEASANTRY = re.compile(
    rf"^\s*(?:{_any_of(PLEASANTRIES)}\s*[!.,:;]+|{_any_of(AFFIRMATIVE_OPENERS)}\s*[!.]+)\s*",
    re.IGNORECASE,
)
_CLOSING = re.compile(rf"^{_any_of(CLOSING_OFFERS)}", re.IGNORECASE)
_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+")
_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+")
_QUOTE = re.compile(r"^\s*>\s?")
_RULE = re.compile(r"^\s*([-*_])(?:\s*\1){2,}\s*$")
_EMPHASIS = (
    re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"),
    re.compile(r"__(?=\S)(.+?)(?<=\S)__"),
    re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"),
    re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"),
    re.compile(r"`([^`\n]+)`"),
)
_END = ".!?:;"
_FENCE = "```"
# A sentence ends at . ! or ? (maybe inside a closing quote or bracket) followed by space and
# a capital, a digit, an opening quote or markdown emphasis; "e.g. this" is not cut. A line
# ends one too, and a line's list or header marker ("1. ") is never a sentence end.
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"'\u201d\u2019)\]]))\s+(?=[A-Z0-9\"'\u201c\u2018(\[*_])"
)
_MARKER = re.compile(r"^\s*(?:#{1,6}\s+|(?:[-*+\u2022]|\d{1,3}[.)])\s+|>\s?)")


def sentences(text: str) -> list[str]:
    """The sentences (and lines) of `text`, stripped, in order; none of them empty."""
    return [text[start:end] for start, end in _spans(text)]


def _spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`: stripped, non-empty, in order."""
    spans, offset = [], 0
    for line in text.split("\n"):
        marker = _MARKER.match(line)
        ends = [m.span() for m in _SENTENCE_END.finditer(line, marker.end() if marker else 0)]
        start = 0
        for end, after in [*ends, (len(line), len(line))]:
            piece = line[start:end]
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                spans.append((offset + start + lead, offset + start + len(piece.rstrip())))
            start = after
        offset += len(line) + 1
    return spans


def _can_end(sentence: str) -> bool:
    return not _HEADER.match(sentence) and not sentence.rstrip("*_").endswith(":")


def plain(text: str) -> str:
    """The answer without its dressing: markdown emphasis, headers, bullets and rules gone,
    a leading pleasantry ("Sure!", "Great question.") and closing offers ("Let me know if
    ...") dropped, whitespace collapsed to single spaces. Never empty: a text that is nothing
    but a pleasantry keeps it. A text with a code block keeps its lines (they mean something)
    and loses only the pleasantry and closing offers."""
    body = _drop_pleasantry(text.strip())
    if _FENCE not in body:
        body = _flatten(body)
    return _drop_closing(body)


def short(text: str) -> str:
    """The leading sentences, up to about half the text's length: the first sentence always,
    more while the kept text stays within half. Cut only at a sentence or line end, and never
    right after a header or a line ending in ':' (a lead-in needs what follows), so a single
    sentence comes back whole. A leading pleasantry goes first: it is no sentence to keep.
    A code block is never cut into: the cut comes before it or not at all."""
    text = _drop_pleasantry(text.strip())
    fence = text.find(_FENCE)
    ends = [
        end
        for start, end in _spans(text)[:-1]
        if _can_end(text[start:end]) and (fence < 0 or end <= fence)
    ]
    if not ends:
        return text
    within = [end for end in ends if end <= len(text) / 2]
    return text[: within[-1] if within else ends[0]]


def long(text: str) -> str:
    """The answer followed by `ELABORATION`, a sentence that adds no fact (a paragraph of its
    own after a text of several lines, so it does not join a list's last item)."""
    text = text.strip()
    if "\n" in text:
        return f"{text}\n\n{ELABORATION}"
    return f"{_terminated(text)} {ELABORATION}"


def formatted(text: str) -> str:
    """The answer as markdown: the bold `FORMATTED_LEAD`, then one bullet per sentence, its
    own markdown removed first so bullets never nest. Nothing is dropped. A text with a code
    block gets the lead alone: its lines are not sentences."""
    if _FENCE in text:
        return f"{FORMATTED_LEAD}\n\n{text.strip()}"
    lines = _clean_lines(text) or [text.strip()]
    bullets = "\n".join(f"- {s}" for line in lines for s in sentences(line))
    return f"{FORMATTED_LEAD}\n\n{bullets}"


def confident(text: str) -> str:
    """The answer after `CONFIDENT_OPENER`: certainty claimed, content unchanged (on a line of
    its own before a text of several lines, whose first may be a header)."""
    text = text.strip()
    return f"{CONFIDENT_OPENER}{_joint(text)}{text}"


@dataclass(frozen=True)
class StyleVariant:
    """One way of giving the chosen answer the worse style: a rule for each side."""

    name: str
    chosen: Callable[[str], str]
    rejected: Callable[[str], str]
    description: str


VARIANTS: tuple[StyleVariant, ...] = (
    StyleVariant("plain vs formatted", plain, formatted, "chosen plain, rejected markdown"),
    StyleVariant("short vs long", short, long, "chosen shortened, rejected elaborated"),
    StyleVariant("plain vs confident", plain, confident, "chosen plain, rejected confident"),
)
# how the CLI, the report and the card describe the variants, in one place
SUMMARY = "chosen plainer/shorter, rejected longer/formatted/confident"


def _drop_pleasantry(text: str) -> str:
    rest = _PLEASANTRY.sub("", text, count=1)
    if rest == text or not rest.strip():
        return text
    return rest[0].upper() + rest[1:]


def _drop_closing(text: str) -> str:
    spans = _spans(text)
    kept = len(spans)
    while kept > 1 and _CLOSING.match(text[spans[kept - 1][0] :]):
        kept -= 1
    return text if kept == len(spans) else text[: spans[kept - 1][1]]


def _flatten(text: str) -> str:
    return " ".join(_clean_lines(text)) or text


def _clean_lines(text: str) -> list[str]:
    """The text's non-empty lines without markdown, whitespace collapsed."""
    lines = []
    for line in text.splitlines():
        if _RULE.match(line):
            continue
        marked = bool(_HEADER.match(line) or _BULLET.match(line))
        line = _QUOTE.sub("", _BULLET.sub("", _HEADER.sub("", line)))
        for pattern in _EMPHASIS:
            line = pattern.sub(r"\1", line)
        line = " ".join(line.split())
        if line:
            # a header or bullet ended its line without punctuation; joined, it needs some
            lines.append(_terminated(line) if marked else line)
    return lines


def _joint(text: str) -> str:
    return "\n\n" if "\n" in text else " "


def _terminated(text: str) -> str:
    return text if not text or text[-1] in _END + "\"')]\u201d\u2019" else text + "."
