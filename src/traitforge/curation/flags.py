"""Responses set aside before scoring: empty, not in the expected language, or too long.

The language check is deliberately cheap and needs no model. It reads two kinds of evidence:

- script: the share of a response's letters that are Latin. Chinese or Russian text fails here.
- function words: among the words that reveal a language, the share that are English. English
  stop words count for English; French, German, Spanish, Italian, Portuguese and Dutch stop
  words, and words with letters outside ASCII, count against it. Content words
  ("watermelon") reveal nothing and are not counted, so a terse English answer such as
  "Vitamin C cures colds" is never judged on its nouns. English words that are also foreign
  stop words ("die", "man", "war") count against English only when the text holds no English
  stop word at all.

Either share below `FlagConfig.min_language_share` flags the response, but only with enough
evidence: short answers like "No" or "Nothing happens" are never flagged.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from traitforge.errors import ConfigError
from traitforge.schemas import Candidate, Flag, FlagConfig

# Languages whose spaCy stop-word lists count as evidence against English. Six large
# Latin-script languages: more lists (Polish, Tagalog, ...) add little and collide with
# English words; accented letters already catch most other Latin-script languages.
_OTHER_LANGUAGES = ("fr", "de", "es", "it", "pt", "nl")

# Everyday English words that are also stop words in one of _OTHER_LANGUAGES ("die", "war",
# "man", "come", "car", "want"...). In English text they are content words, so they count as
# evidence for neither side.
_ENGLISH_HOMOGRAPHS = (
    "ad", "ah", "ai", "bald", "bat", "ben", "bent", "bin", "boa", "bravo", "car", "cent",
    "certain", "co", "com", "come", "comment", "dice", "die", "dies", "different", "diverse",
    "dont", "door", "elf", "elk", "era", "etc", "eu", "eventual", "ex", "fare", "favor", "fin",
    "final", "fine", "gross", "gut", "ha", "hare", "hat", "hen", "hi", "ho", "hoe", "hue",
    "inc", "inclusive", "later", "local", "logo", "male", "man", "mayor", "men", "met", "min",
    "net", "non", "oh", "ore", "plus", "possible", "press", "prof", "pronto", "pure",
    "relative", "rend", "sea", "sent", "sin", "solo", "son", "state", "stop", "sue", "suit",
    "tag", "tale", "tan", "tempo", "tend", "toe", "tot", "total", "usa", "vale", "van", "want",
    "war", "zero",
)  # fmt: skip

_MIN_WORD_EVIDENCE = 3  # identifying words needed before the word share can flag a response
_MIN_LETTERS = 2  # letters needed before the script share can flag a response
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters: "don't" -> "don", "t"; "U.S." -> "u", "s"


@dataclass(frozen=True)
class LanguageEvidence:
    """What the language check saw in one text."""

    letters: int
    latin_letters: int
    expected_words: list[str]  # words that mark the expected language
    other_words: list[str]  # words that mark another language

    @property
    def latin_share(self) -> float:
        return self.latin_letters / self.letters if self.letters else 1.0

    @property
    def expected_share(self) -> float:
        marked = len(self.expected_words) + len(self.other_words)
        return len(self.expected_words) / marked if marked else 1.0


class ResponseFlagger:
    """Flags responses that must not be scored, one Flag per flagged candidate.

    A candidate that fails several checks gets the first reason in the order empty, language,
    too-long; the detail mentions the others.
    """

    def __init__(self, config: FlagConfig) -> None:
        self.config = config
        self._expected: frozenset[str] | None = None
        self._other: frozenset[str] = frozenset()
        self._homographs: frozenset[str] = frozenset()

    def setup(self) -> None:
        """Load the stop-word lists (spaCy's language data; no model is loaded)."""
        if self._expected is not None:
            return
        language = self.config.language
        if language != "en" and self.config.min_language_share > 0:
            raise ConfigError(
                f"curation.flags.language is {language!r}, but the language check only knows "
                "English ('en'). Set curation.flags.language: en, or turn the check off with "
                "curation.flags.min_language_share: 0"
            )
        try:
            english = _stop_words("en")
            other = frozenset().union(*(_stop_words(lang) for lang in _OTHER_LANGUAGES))
        except ImportError as e:
            raise ConfigError(
                "the language flag reads spaCy's stop-word lists: pip install spacy==3.8.18"
            ) from e
        self._homographs = frozenset(_ENGLISH_HOMOGRAPHS) & (other - english)
        self._other = other - english - self._homographs
        self._expected = english

    def process(
        self, candidates: Sequence[Candidate], token_counts: Sequence[int] | None = None
    ) -> list[Flag]:
        """Flags for the candidates that fail a check, in input order.

        token_counts: tokens per response under the embedding model's tokenizer, aligned with
        candidates. When None, lengths are estimated from whitespace-separated words.
        """
        if self._expected is None:
            raise RuntimeError("ResponseFlagger.setup() must be called before process()")
        if token_counts is not None and len(token_counts) != len(candidates):
            raise ValueError(
                f"token_counts has {len(token_counts)} entries for {len(candidates)} "
                "candidates; pass one count per candidate, in the same order"
            )
        flags = []
        for i, candidate in enumerate(candidates):
            tokens = token_counts[i] if token_counts is not None else None
            flag = self._flag(candidate, tokens)
            if flag is not None:
                flags.append(flag)
        return flags

    def language_evidence(self, text: str) -> LanguageEvidence:
        """The letters and identifying words the language check counts in text."""
        if self._expected is None:
            raise RuntimeError("ResponseFlagger.setup() must be called before language checks")
        letters = [c for c in text if c.isalpha()]
        latin = sum(_is_latin(c) for c in letters)
        expected, other, ambiguous = [], [], []
        for word in _WORD.findall(text.lower()):
            if word in self._expected:
                expected.append(word)
            elif word in self._homographs:
                ambiguous.append(word)
            elif (word in self._other and len(word) > 1) or not word.isascii():
                other.append(word)
        if not expected:  # no English function word at all: read "die", "man" as German
            other += ambiguous
        return LanguageEvidence(len(letters), latin, expected, other)

    def _flag(self, candidate: Candidate, tokens: int | None) -> Flag | None:
        # Records built with model_construct skip validation: the response may be missing.
        response = getattr(candidate, "response", None)
        response = response if isinstance(response, str) else ""
        if not response.strip():
            return Flag(
                candidate_id=candidate.id,
                reason="empty",
                detail=f"the response is empty or only whitespace ({len(response)} characters)",
            )
        problems: list[tuple[Literal["language", "too-long"], str]] = []
        language = self._language_problem(response)
        if language is not None:
            problems.append(("language", language))
        length = self._length_problem(response, tokens)
        if length is not None:
            problems.append(("too-long", length))
        if not problems:
            return None
        (reason, detail), *others = problems
        for other_reason, other_detail in others:
            detail += f"; also {other_reason}: {other_detail}"
        return Flag(candidate_id=candidate.id, reason=reason, detail=detail)

    def _language_problem(self, text: str) -> str | None:
        threshold = self.config.min_language_share
        if threshold <= 0:
            return None
        seen = self.language_evidence(text)
        if seen.letters >= _MIN_LETTERS and seen.latin_share < threshold:
            return (
                f"only {seen.latin_share:.0%} of its {seen.letters} letters are Latin script "
                f"(minimum {threshold:.0%}); expected language {self.config.language!r}"
            )
        marked = len(seen.expected_words) + len(seen.other_words)
        if marked >= _MIN_WORD_EVIDENCE and seen.expected_share < threshold:
            return (
                f"{len(seen.expected_words)} of its {marked} language-marking words are English "
                f"({seen.expected_share:.0%}, minimum {threshold:.0%}); other-language words: "
                f"{', '.join(seen.other_words[:6])}"
            )
        return None

    def _length_problem(self, text: str, tokens: int | None) -> str | None:
        limit = self.config.max_tokens
        if tokens is not None:
            if tokens > limit:
                return f"{tokens} tokens, above max_tokens={limit}"
            return None
        words = len(text.split())
        if words > limit:
            return (
                f"about {words} tokens, above max_tokens={limit} (estimated from whitespace-"
                "separated words because no tokenizer counts were given; the embedding "
                "tokenizer usually counts more)"
            )
        return None


def _stop_words(language: str) -> frozenset[str]:
    module = importlib.import_module(f"spacy.lang.{language}.stop_words")
    return frozenset(w.lower() for w in module.STOP_WORDS if w.isalpha())


def _is_latin(char: str) -> bool:
    return char.isascii() or unicodedata.name(char, "").startswith("LATIN")
