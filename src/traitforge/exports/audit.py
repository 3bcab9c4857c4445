"""Label audit: a cross-fitted committee re-scores every exported pair, and each source is
judged by what the trait's other sources teach.

Features are the frozen sentence embeddings curation cached (nothing is embedded here), as
phi = [response, prompt * response], and every model is the linear Bradley-Terry ensemble of
`curation/ensemble.py` fitted on pair differences; its members' P(chosen wins) is averaged.

- **Committee.** The trait's prompts are dealt into k folds; the pairs of each fold are scored
  by a model fitted on the other folds' pairs only, so no pair is judged by a model that saw
  it (or its prompt). Confident learning's per-class threshold (Northcutt et al., 2021) for
  the class "the rejected side wins" is the mean P(rejected wins) of the pairs in that class;
  no pair is labelled so, so t is the mean P(rejected wins) of the pairs the committee sides
  against (P(chosen wins) < 0.5), and a pair is flagged when its P(rejected wins) >= t: a
  disagreement at least as confident as the committee's average one. (The mean P(chosen
  wins) as t flagged under half of deliberately flipped labels on synthetic data: the
  L2-shrunk linear models are under-confident.) A committee not shown to beat chance (the
  95% Wilson interval of its out-of-fold agreement with the labels reaching down to one half)
  flags nothing: its disagreements are luck.
- **Sources.** Each (trait, source) with enough pairs is scored by a model fitted on the
  trait's other sources only. Most of its labels disagreeing, with the 95% interval below one
  half, says the labels may be inverted (a wrong polarity, a swapped column); an interval
  around one half says they are noisy, or the sources teach different things. With three or
  more sources, the most inverted one is set aside and the rest judged again without it, so
  that one large inverted file does not make its look-alikes look inverted too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from traitforge.curation.embeddings import Embedder, EmbeddingCache, text_key
from traitforge.curation.ensemble import FIRST, Comparison, PreferenceEnsemble, features
from traitforge.curation.recheck import RecheckEntry, RecheckList
from traitforge.errors import ExportError
from traitforge.exports.judge_agreement import wilson_interval
from traitforge.reporting import fmt_pct_ci
from traitforge.schemas import Candidate, PreferencePair, ProjectConfig
from traitforge.schemas.hashing import content_hash
from traitforge.schemas.records import prompt_text
from traitforge.schemas.results import AuditResult, FlaggedPair, SourceVerdict, TraitAudit
from traitforge.workspace import Store

FOLDS = 5
# A source's share (and the model of its rivals) means little on fewer pairs: at 20 pairs the
# Wilson interval of an all-disagreeing source still ends below 0.17.
MIN_SOURCE_PAIRS = 20
RULE = (
    "flag a pair when the committee's out-of-fold P(rejected wins) >= t, t = the mean "
    "P(rejected wins) of the pairs it sides against (confident learning's per-class "
    "threshold); nothing is flagged unless its out-of-fold agreement with the labels beats "
    "chance (95% interval above one half)"
)
INVERTED = "labels may be inverted"
NOISY = "labels may be noisy or the sources teach different things"
CONSISTENT = "consistent"


def audit_labels(
    store: Store,
    config: ProjectConfig,
    cache_path: Path,
    *,
    folds: int = FOLDS,
    min_source_pairs: int = MIN_SOURCE_PAIRS,
    seed: int = 0,
) -> AuditResult:
    """Audit the human pairs of the latest export (AI-feedback pairs are counted, not audited)."""
    if folds < 2:
        raise ExportError(f"--folds {folds}: a cross-fitted committee needs at least 2 folds")
    if min_source_pairs < 1:
        raise ExportError(f"--min-source-pairs {min_source_pairs}: expected at least 1")
    root = store.path.parent
    exported = list(store.pairs())
    if not exported:
        first = "" if store.counts()["candidates"] else "`traitforge ingest` and then "
        raise ExportError(
            f"nothing to audit: {root} holds no exported pairs; run {first}`traitforge export` "
            "first (the audit scores the pairs of the latest export)"
        )
    pairs = [p for p in exported if p.origin != "ai-feedback"]
    if not pairs:
        raise ExportError(
            f"nothing to audit: the latest export of {root} holds only AI-feedback pairs; "
            "ingest gold labels or pull annotator judgements, and export again"
        )
    model = config.curation.embedding.model
    # the key curation's embedder wrote them under (it names the backend); no model loads
    vectors = _cached_vectors(pairs, cache_path, Embedder(config.curation.embedding).cache_model)
    if not vectors:
        raise ExportError(
            f"no embeddings of the exported pairs in {cache_path} (model {model}); run "
            f"`traitforge curate --workspace {root} --budget 1` (it embeds every candidate "
            "into that cache), then audit again"
        )
    sources = _source_names(store.candidates())
    traits = {}
    for trait in sorted({p.trait for p in pairs}):
        of_trait = [p for p in pairs if p.trait == trait]
        traits[trait] = _audit_trait(of_trait, vectors, sources, folds, min_source_pairs, seed)
    return AuditResult(
        folds=folds,
        min_source_pairs=min_source_pairs,
        rule=RULE,
        embedding_model=model,
        skipped_ai_feedback=len(exported) - len(pairs),
        traits=traits,
        export=export_fingerprint(exported),
        exported_pairs=len(exported),
    )


def export_fingerprint(pairs: Iterable[PreferencePair]) -> str:
    """Which export this is: a pair's id hashes its trait, prompt and both sides in order, so
    the same ids mean the same pairs with the same labels."""
    return content_hash("export", sorted(p.id for p in pairs))


def recheck_list(result: AuditResult, pairs: Iterable[PreferencePair]) -> RecheckList:
    """The audit's flagged pairs, most doubted first, as re-check entries for `curate`; the
    pairs are the audited export's (a flagged pair not among them is an error)."""
    by_id = {p.id: p for p in pairs}
    flagged = sorted(
        (f for audit in result.traits.values() for f in audit.flagged),
        key=lambda f: (f.p_chosen or 0.0, f.pair_id),
    )
    missing = [f.pair_id for f in flagged if f.pair_id not in by_id]
    if missing:
        raise ExportError(
            f"{len(missing)} flagged pair(s) are not in the latest export (first: "
            f"{missing[0]}); the audit scored another export: run `traitforge audit` again"
        )
    return RecheckList(
        export=export_fingerprint(by_id.values()),
        entries=[
            RecheckEntry(
                pair_id=f.pair_id,
                prompt_id=by_id[f.pair_id].prompt_id,
                trait=by_id[f.pair_id].trait,
                chosen_id=by_id[f.pair_id].chosen_id,
                rejected_id=by_id[f.pair_id].rejected_id,
                p_chosen=f.p_chosen or 0.0,  # always set on a flagged pair
            )
            for f in flagged
        ],
    )


def doubtful_sources(result: AuditResult) -> list[tuple[str, SourceVerdict]]:
    """(trait, verdict) of every source whose labels may be inverted or noisy, by trait."""
    return [
        (trait, v)
        for trait, audit in sorted(result.traits.items())
        for v in audit.sources
        if v.verdict in (INVERTED, NOISY)
    ]


def verdict_line(trait: str, v: SourceVerdict) -> str:
    """One source's verdict with its evidence, as plain text (the source name is user text)."""
    return (
        f"{trait} / {v.source}: {v.verdict} (a model of the trait's other sources orders "
        f"{v.agreed} of its {v.pairs} pairs as labelled: {fmt_pct_ci(v.share, v.share_ci)})"
    )


def _cached_vectors(
    pairs: Sequence[PreferencePair], cache_path: Path, model: str
) -> dict[str, np.ndarray]:
    """text key -> vector, for the prompts and sides the cache holds (opening the cache
    creates it, so a missing file is answered without opening it)."""
    if not cache_path.is_file():
        return {}
    keys = {text_key(t) for p in pairs for t in (prompt_text(p.prompt), p.chosen, p.rejected)}
    with EmbeddingCache(cache_path) as cache:
        return cache.get(model, sorted(keys))


def _source_names(candidates: Iterable[Candidate]) -> dict[str, str]:
    """candidate id -> its source, with the file where the reader records one: the
    anthropic-evals files share a source but each has its own polarity."""
    out = {}
    for c in candidates:
        file = c.metadata.get("file")
        out[c.id] = f"{c.source}/{file}" if isinstance(file, str) and file != c.source else c.source
    return out


def _pair_source(pair: PreferencePair, sources: Mapping[str, str]) -> str:
    sides = {sources.get(pair.chosen_id, "unknown"), sources.get(pair.rejected_id, "unknown")}
    return " + ".join(sorted(sides))


def _audit_trait(
    pairs: Sequence[PreferencePair],
    vectors: Mapping[str, np.ndarray],
    sources: Mapping[str, str],
    folds: int,
    min_source_pairs: int,
    seed: int,
) -> TraitAudit:
    embedded = [
        p
        for p in pairs
        if all(text_key(t) in vectors for t in (prompt_text(p.prompt), p.chosen, p.rejected))
    ]
    phi = _phi(embedded, vectors)
    p_chosen, note = _cross_fitted(embedded, phi, folds, seed)
    threshold = committee_share = None
    flagged = []
    if not note:
        committee_share = float((p_chosen > 0.5).mean())
        against = 1.0 - p_chosen[p_chosen < 0.5]
        agreed = int((p_chosen > 0.5).sum())
        low = (wilson_interval(agreed, len(p_chosen)) or [0.0])[0]
        if low <= 0.5:
            # A committee not shown to beat chance "confidently disagrees" by luck alone.
            note = (
                f"the committee is not shown to beat chance (it agrees with {agreed} of "
                f"{len(p_chosen)} labels; 95% interval from {low:.1%}); nothing flagged"
            )
        elif against.size:
            threshold = float(against.mean())
            order = np.argsort(p_chosen, kind="stable")
            flagged = [
                _flagged(embedded[i], float(p_chosen[i]), sources)
                for i in order
                if 1.0 - p_chosen[i] >= threshold
            ]
    of_source = [_pair_source(p, sources) for p in embedded]
    committee = p_chosen if committee_share is not None else None
    verdicts = _judge_sources(embedded, of_source, phi, committee, min_source_pairs, seed)
    return TraitAudit(
        pairs=len(embedded),
        unembedded=len(pairs) - len(embedded),
        committee_share=committee_share,
        threshold=threshold,
        flagged=flagged,
        sources=verdicts,
        note=note,
    )


def _phi(
    pairs: Sequence[PreferencePair], vectors: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """candidate id -> phi; a candidate id hashes its prompt, so one id has one phi."""
    sides = {}
    for p in pairs:
        prompt = vectors[text_key(prompt_text(p.prompt))]
        sides[p.chosen_id] = (prompt, vectors[text_key(p.chosen)])
        sides[p.rejected_id] = (prompt, vectors[text_key(p.rejected)])
    if not sides:
        return {}
    ids = sorted(sides)
    rows = features(np.stack([sides[c][0] for c in ids]), np.stack([sides[c][1] for c in ids]))
    return dict(zip(ids, rows, strict=True))


def _cross_fitted(
    pairs: Sequence[PreferencePair], phi: Mapping[str, np.ndarray], folds: int, seed: int
) -> tuple[np.ndarray, str]:
    """Out-of-fold P(chosen wins) per pair, and a note when there is no committee."""
    prompts = sorted({p.prompt_id for p in pairs})
    if len(prompts) < 2:
        return np.full(len(pairs), 0.5), (
            f"{len(prompts)} prompt(s) with embedded pairs: too few to cross-fit, nothing flagged"
        )
    order = np.random.default_rng(seed).permutation(len(prompts))
    fold_of = {prompts[j]: rank % min(folds, len(prompts)) for rank, j in enumerate(order)}
    folds_of_pairs = np.array([fold_of[p.prompt_id] for p in pairs])
    out = np.empty(len(pairs))
    for fold in np.unique(folds_of_pairs):
        held = folds_of_pairs == fold
        train = [p for p, h in zip(pairs, held, strict=True) if not h]
        scored = [p for p, h in zip(pairs, held, strict=True) if h]
        out[held] = _p_chosen(train, scored, phi, seed)
    return out, ""


def _p_chosen(
    train: Sequence[PreferencePair],
    scored: Sequence[PreferencePair],
    phi: Mapping[str, np.ndarray],
    seed: int,
) -> np.ndarray:
    """The ensemble fitted on `train`: its members' mean P(chosen wins) on `scored`."""
    answers = [Comparison(p.chosen_id, p.rejected_id, FIRST) for p in train]
    model = PreferenceEnsemble.fit(answers, phi, seed=seed)
    if model is None:
        return np.full(len(scored), 0.5)
    chosen = model.rewards(np.stack([phi[p.chosen_id] for p in scored]))
    rejected = model.rewards(np.stack([phi[p.rejected_id] for p in scored]))
    return model.outcome_probabilities(chosen, rejected)[..., FIRST].mean(axis=1)


def _flagged(pair: PreferencePair, p: float, sources: Mapping[str, str]) -> FlaggedPair:
    return FlaggedPair(
        pair_id=pair.id,
        prompt_id=pair.prompt_id,
        source=_pair_source(pair, sources),
        prompt=prompt_text(pair.prompt),
        chosen=pair.chosen,
        rejected=pair.rejected,
        p_chosen=p,
    )


def _judge_sources(
    pairs: Sequence[PreferencePair],
    of_source: Sequence[str],
    phi: Mapping[str, np.ndarray],
    committee: np.ndarray | None,
    min_source_pairs: int,
    seed: int,
) -> list[SourceVerdict]:
    """Each source judged by a model of the trait's other sources.

    One inverted source makes a look-alike source look inverted too: the look-alike's rivals'
    model learned mostly the flipped labels. So while three or more sources are judged and
    some look inverted, the most inverted one (the lowest share) is set aside with its verdict
    and the others are judged again without it. Two sources that contradict each other stay
    both 'inverted': nothing says which one is wrong.
    """
    verdicts: dict[str, SourceVerdict] = {}
    aside: set[str] = set()
    while True:
        keep = [i for i, s in enumerate(of_source) if s not in aside]
        kept_pairs = [pairs[i] for i in keep]
        kept_sources = [of_source[i] for i in keep]
        kept_committee = None if committee is None else committee[keep]
        current = {
            name: _judge_source(
                name, kept_pairs, kept_sources, phi, kept_committee, min_source_pairs, seed
            )
            for name in sorted(set(kept_sources))
        }
        verdicts.update(current)
        inverted = [v for v in current.values() if v.verdict == INVERTED]
        judged = [v for v in current.values() if v.agreed is not None]
        if not inverted or len(judged) < 3:
            return [verdicts[name] for name in sorted(verdicts)]
        aside.add(min(inverted, key=lambda v: (v.share or 0.0, v.source)).source)


def _judge_source(
    name: str,
    pairs: Sequence[PreferencePair],
    of_source: Sequence[str],
    phi: Mapping[str, np.ndarray],
    committee: np.ndarray | None,
    min_source_pairs: int,
    seed: int,
) -> SourceVerdict:
    mine = [p for p, s in zip(pairs, of_source, strict=True) if s == name]
    others = [p for p, s in zip(pairs, of_source, strict=True) if s != name]
    mask = np.array([s == name for s in of_source])
    committee_share = None if committee is None else float((committee[mask] > 0.5).mean())
    reason = None
    if len(mine) < min_source_pairs:
        reason = f"not checked: {len(mine)} pairs, fewer than {min_source_pairs}"
    elif not others:
        reason = "not checked: no other source of this trait"
    elif len(others) < min_source_pairs:
        reason = (
            f"not checked: the other sources hold {len(others)} pairs, "
            f"fewer than {min_source_pairs}"
        )
    if reason is not None:
        return SourceVerdict(
            source=name,
            pairs=len(mine),
            agreed=None,
            share=None,
            share_ci=None,
            mean_p_chosen=None,
            committee_share=committee_share,
            verdict=reason,
        )
    p = _p_chosen(others, mine, phi, seed)
    agreed = int((p > 0.5).sum())
    ci = wilson_interval(agreed, len(mine))
    assert ci is not None  # len(mine) >= min_source_pairs >= 1
    verdict = INVERTED if ci[1] < 0.5 else CONSISTENT if ci[0] > 0.5 else NOISY
    return SourceVerdict(
        source=name,
        pairs=len(mine),
        agreed=agreed,
        share=agreed / len(mine),
        share_ci=ci,
        mean_p_chosen=float(p.mean()),
        committee_share=committee_share,
        verdict=verdict,
    )
