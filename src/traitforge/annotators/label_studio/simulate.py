"""Simulated annotators answering in Label Studio, in the result shapes its editor saves.

Accounts: sim-1, sim-2, ... are created through `POST /api/users` as members of the owner's
organization. Label Studio 1.23's open-source API gives no way to obtain another user's token
(`/api/current-user/token` answers the caller's own; users created through the API have no
password, so they cannot log in for one either). So the annotations are posted with the
owner's token and `completed_by` set to the simulated account, which the server accepts and
lists as that account's (its `updated_by` names the owner): simulated answers go through the
same annotation endpoint and the same result validation as people's, but not through the
annotator's own session.

Who answers what: copy i of a task goes to the i-th of the task's `assignees` (a hash-ordered
draw, as on Argilla), so a killed and re-run simulation ends with the same answers. What each
one answers is `traitforge.annotators.simulated`'s, turned into regions by `result_regions`.
A simulated ranking's equal ranks go into the same place of the Ranker, so ties stay ties, as
on Argilla.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from traitforge.annotators.answer_key import AnswerKey
from traitforge.annotators.backends import SimulationReport
from traitforge.annotators.label_studio.client import LabelStudioAPI
from traitforge.annotators.label_studio.labeling import (
    LIST,
    TIE,
    TIE_CHOICE,
    LabelingConfig,
    ranker_value,
)
from traitforge.annotators.label_studio.projects import project_groups, project_labeling, task_keys
from traitforge.annotators.label_studio.server import Connection
from traitforge.annotators.records import (
    PREFERENCE,
    PROMPT_FIELD,
    RANKING,
    RATIONALE,
    presented_order,
    response_field,
)
from traitforge.annotators.records import TIE as ARGILLA_TIE
from traitforge.annotators.simulated import SimulatedAnnotator, assignees
from traitforge.schemas import Candidate, ComparisonTask, ProjectConfig, TraitSpec
from traitforge.schemas.hashing import content_hash

if TYPE_CHECKING:
    from traitforge.curation.progress import StageProgress
    from traitforge.workspace import Store

EMAIL_DOMAIN = "traitforge.local"


def _region(control: str, to_name: str, kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": content_hash("sim-region", control, length=10),
        "from_name": control,
        "to_name": to_name,
        "type": kind,
        "value": value,
    }


def result_regions(
    values: Mapping[str, Mapping[str, Any]],
    labeling: LabelingConfig,
    traits: Mapping[str, TraitSpec],
) -> list[dict[str, Any]]:
    """A simulated annotator's answer (Argilla response values, `SimulatedAnnotator.answer`)
    as the result list Label Studio's editor saves for `labeling`."""
    out = []
    texts = labeling.texts
    if PREFERENCE in values:
        label = values[PREFERENCE]["value"]
        if label == ARGILLA_TIE:
            out.append(_region(TIE, PROMPT_FIELD, "choices", {"choices": [TIE_CHOICE]}))
        else:
            side = {"A": "left", "B": "right"}[label]
            out.append(_region(PREFERENCE, PREFERENCE, "pairwise", {"selected": side}))
    if RANKING in values:
        position = {response_field(i): i for i in range(len(texts))}
        items = sorted(values[RANKING]["value"], key=lambda v: position[v["value"]])
        ranks = [(texts[position[v["value"]]], v["rank"]) for v in items]
        out.append(_region(RANKING, LIST, "ranker", ranker_value(ranks)))
    for name, control in labeling.controls.items():
        if control.type == "rating" and name in values:
            assert control.trait is not None
            star = int(values[name]["value"]) - traits[control.trait].scale.min + 1
            (to_name,) = control.to_names
            out.append(_region(name, to_name, "rating", {"rating": star}))
    rationale = values.get(RATIONALE, {}).get("value")
    if isinstance(rationale, str) and rationale:
        out.append(_region(RATIONALE, PROMPT_FIELD, "textarea", {"text": [rationale]}))
    return out


def ensure_accounts(api: LabelStudioAPI, usernames: Sequence[str]) -> dict[str, int]:
    """Username -> user id of each simulated account, creating those missing."""
    known = {u.get("username"): int(u["id"]) for u in api.users()}
    for name in usernames:
        if name not in known:
            known[name] = int(api.create_user(name, f"{name}@{EMAIL_DOMAIN}")["id"])
    return {name: known[name] for name in usernames}


def simulate(
    store: Store,
    config: ProjectConfig,
    connection: Connection,
    usernames: Sequence[str],
    progress: StageProgress | None = None,
    answers: AnswerKey | None = None,
) -> SimulationReport:
    """Each unanswered task copy of the workspace's projects answered by its assignee."""
    settings = config.annotation.label_studio
    seed = config.annotation.simulation.seed
    traits = {t.name: t for t in config.traits}
    candidates = {c.id: c for c in store.candidates()}
    tasks = {t.id: t for t in store.tasks()}
    groups = project_groups(tasks.values(), config)
    report = SimulationReport(url=connection.url)
    annotators = {
        u: SimulatedAnnotator(u, config.annotation.simulation, traits, answers) for u in usernames
    }
    with LabelStudioAPI.connect(connection, settings.retries) as api:
        ids = ensure_accounts(api, usernames)
        remote = api.projects() if groups else {}
        report.datasets = sorted(set(groups) & set(remote))
        unanswerable: dict[str, set[int]] = {}
        for name in report.datasets:
            labeling = project_labeling(groups[name], config, traits)
            orders = store.presented_orders(name)
            server_tasks = list(api.tasks(int(remote[name]["id"])))
            # Who already answered which task, over all its copies.
            done: dict[str, set[int]] = {}
            for server_task in server_tasks:
                _, task_id, _ = task_keys(server_task)
                for a in server_task.get("annotations") or []:
                    done.setdefault(task_id or "", set()).add(a.get("completed_by"))
            for server_task in server_tasks:
                _, task_id, copy = task_keys(server_task)
                if server_task.get("annotations"):
                    continue
                task = tasks.get(task_id or "")
                order = list(orders.get(task.id) or presented_order(task)) if task else []
                reason = _unanswerable(server_task, task, order, candidates, labeling, annotators)
                if reason is None and task is not None:
                    chosen = assignees(task.id, list(usernames), settings.min_submitted, seed)
                    slot = int(copy) - 1 if copy and copy.isdigit() else -1
                    if not 0 <= slot < len(chosen):
                        reason = "more copies of the task than simulated annotators"
                    elif ids[chosen[slot]] in done.get(task.id, set()):
                        reason = "its assignee already answered another copy"
                    else:
                        _answer(
                            api,
                            server_task,
                            task,
                            order,
                            annotators[chosen[slot]],
                            ids,
                            candidates,
                            labeling,
                            traits,
                            report,
                        )
                        done.setdefault(task.id, set()).add(ids[chosen[slot]])
                        if progress:
                            progress("simulate", sum(report.answered.values()), len(server_tasks))
                if reason is not None:
                    unanswerable.setdefault(reason, set()).add(int(server_task["id"]))
    report.skipped.update({reason: len(ids_) for reason, ids_ in unanswerable.items()})
    return report


def _answer(
    api: LabelStudioAPI,
    server_task: Mapping[str, Any],
    task: ComparisonTask,
    order: list[str],
    annotator: SimulatedAnnotator,
    ids: Mapping[str, int],
    candidates: Mapping[str, Candidate],
    labeling: LabelingConfig,
    traits: Mapping[str, TraitSpec],
    report: SimulationReport,
) -> None:
    values, why = annotator.answer(task, order, candidates, labeling.layout)
    annotation: dict[str, Any] = {
        "result": result_regions(values, labeling, traits),
        "completed_by": ids[annotator.username],
    }
    predictions = sorted(server_task.get("predictions") or [], key=lambda p: p["id"])
    if predictions:  # the editor pre-fills the answer from a prediction
        annotation["parent_prediction"] = predictions[0]["id"]
    api.create_annotation(int(server_task["id"]), annotation)
    report.behaviour[why] += 1
    report.answered[annotator.username] += 1


def _unanswerable(
    server_task: Mapping[str, Any],
    task: ComparisonTask | None,
    order: Sequence[str],
    candidates: Mapping[str, Candidate],
    labeling: LabelingConfig,
    annotators: Mapping[str, SimulatedAnnotator],
) -> str | None:
    if task is None:
        return "task maps to no task in the workspace"
    if any(c not in candidates for c in order):
        return "a candidate is no longer in the workspace"
    data = server_task.get("data") or {}
    if [data.get(t) for t in labeling.texts] != [candidates[c].response for c in order]:
        return "task shows other responses than the store's task"
    anyone = next(iter(annotators.values()), None)
    if anyone is not None and not anyone.knows(task, [candidates[c] for c in order]):
        return f"a candidate has no {task.trait} value in the answer key"
    return None
