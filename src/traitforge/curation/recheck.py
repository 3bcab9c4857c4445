"""Re-check tasks: exported pairs the label audit doubted, sent back to annotators.

`traitforge audit --recheck` writes the audit's flagged pairs to WORKSPACE/recheck.json; the
next `curate` turns each pending one into a task before the selector fills the rest of the
round's budget. A re-check task's id hashes only its pair id, never the round: it is sent once,
and re-running `audit --recheck` or `curate` adds nothing twice. Its id differs from any task
that asked the same candidates, so its Argilla record is a new one and its answers are new
judgements beside the earlier ones (aggregation counts them as more votes on that task).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from traitforge.curation.pool import plural
from traitforge.errors import WorkspaceError
from traitforge.schemas import Candidate, ComparisonTask
from traitforge.schemas.hashing import content_hash
from traitforge.workspace.files import atomic_write_text

RECHECK_FILE = "recheck.json"
INELIGIBLE = "a candidate is flagged, a same-prompt duplicate or no longer in the workspace"
UNKNOWN_TRAIT = "the trait is not in the config"

_FILE = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RecheckEntry(BaseModel):
    """One flagged pair to ask annotators about again."""

    model_config = _FILE

    pair_id: str
    prompt_id: str
    trait: str
    chosen_id: str
    rejected_id: str
    p_chosen: float = Field(ge=0.0, le=1.0, description="The committee's P(chosen wins).")

    @property
    def task_id(self) -> str:
        return content_hash("recheck", self.pair_id)


class RecheckList(BaseModel):
    """What recheck.json holds: the flagged pairs of one audited export, most doubted first."""

    model_config = _FILE

    export: str = Field(description="Fingerprint of the export the audit scored.")
    entries: list[RecheckEntry]


@dataclass
class Rechecks:
    """What a round did with the re-check list."""

    tasks: list[ComparisonTask] = field(default_factory=list)  # new this round
    waiting: int = 0  # pending, beyond this round's budget: a later round sends them
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> entries not sent

    def summary(self) -> str:
        """'re-check: 2 flagged pairs sent back; 1 waiting for a later round's budget.'"""
        line = f"re-check: {plural(len(self.tasks), 'flagged pair')} sent back"
        if self.waiting:
            line += f"; {self.waiting} waiting for a later round's budget"
        for reason, n in sorted(self.skipped.items()):
            line += f"; {n} skipped: {reason}"
        return line + "."


def write_rechecks(path: Path, rechecks: RecheckList) -> None:
    atomic_write_text(path, rechecks.model_dump_json(indent=2) + "\n")


def read_rechecks(path: Path) -> RecheckList | None:
    """The re-check list, or None when `audit --recheck` never wrote one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise WorkspaceError(f"cannot read the re-check list {path}: {e}") from e
    try:
        return RecheckList.model_validate_json(text)
    except ValidationError as e:
        raise WorkspaceError(
            f"{path} is not a re-check list traitforge can read ({e.error_count()} error(s), "
            f"first: {e.errors()[0]['msg']}); run `traitforge audit --recheck` to write it "
            "again, or delete it"
        ) from e


def recheck_tasks(
    entries: Sequence[RecheckEntry],
    eligible: Sequence[Candidate],
    existing: Sequence[ComparisonTask],
    traits: Collection[str],
    budget: int,
    round_: int,
) -> Rechecks:
    """Tasks for the entries not sent yet, in list order, at most `budget` of them.

    An entry whose task is in `existing` was sent (this round or an earlier one) and is
    passed over; one whose candidates cannot be paired any more is skipped and counted."""
    sent = {t.id for t in existing}
    ok = {c.id for c in eligible}
    out = Rechecks()
    skipped: Counter[str] = Counter()
    for entry in entries:
        if entry.task_id in sent:
            continue
        if entry.trait not in traits:
            skipped[UNKNOWN_TRAIT] += 1
        elif not {entry.chosen_id, entry.rejected_id} <= ok:
            skipped[INELIGIBLE] += 1
        elif len(out.tasks) >= budget:
            out.waiting += 1
        else:
            sent.add(entry.task_id)
            out.tasks.append(_task(entry, round_))
    out.skipped = dict(skipped)
    return out


def _task(entry: RecheckEntry, round_: int) -> ComparisonTask:
    # Candidates in id order, never chosen first: the label in doubt must not show. Not a
    # gold check: a doubted gold label must not grade annotators.
    return ComparisonTask(
        id=entry.task_id,
        prompt_id=entry.prompt_id,
        candidate_ids=sorted((entry.chosen_id, entry.rejected_id)),
        trait=entry.trait,
        reason="recheck",
        reason_detail=(
            f"label audit: the committee gives the exported label P(chosen wins) "
            f"{entry.p_chosen:.3f} (pair {entry.pair_id})"
        ),
        gold_check=False,
        round=round_,
    )
