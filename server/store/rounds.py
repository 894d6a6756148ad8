"""Query rounds and first-set rounds: start one (at most one queued or running per project, held by a unique
partial index), keep its status in step with its job, list rounds, scores and model versions, and the auto-round
rule.

A round's status mirrors its job (`round`, or `first_set` for a first-set round). Every place that ends a job
calls `settle_rounds_of_job`; as a safety net, a start that finds an active round whose job has ended settles it
and tries again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import (
    Image,
    ImageStatus,
    Job,
    JobStatus,
    MaskSource,
    MaskVersion,
    ModelVersion,
    Project,
    Round,
    RoundStatus,
    Score,
    Split,
)
from server.round_schemas import FIRST_SET, FirstSetCreate, RoundCreate, parse_budget
from server.store.errors import Conflict, NotFound

ACTIVE = (RoundStatus.queued, RoundStatus.running)
HUMAN_SOURCES = (MaskSource.human, MaskSource.sam)
_JOB_TO_ROUND = {
    JobStatus.queued: RoundStatus.queued,
    JobStatus.running: RoundStatus.running,
    JobStatus.done: RoundStatus.done,
    JobStatus.failed: RoundStatus.failed,
    JobStatus.cancelled: RoundStatus.cancelled,
}
_TRIES = 3


class RoundRunning(Conflict):
    def __init__(self, project_id: int, active: Round) -> None:
        super().__init__(
            f"round {active.id} (#{active.index}) of project {project_id} is {active.status.value}; "
            "one round at a time: wait for it or cancel its job"
        )
        self.extra = {"round_id": active.id, "job_id": active.job_id}


def active_round(session: Session, project_id: int) -> Round | None:
    return session.scalar(select(Round).where(Round.project_id == project_id, Round.status.in_(ACTIVE)))


def settle_rounds_of_job(session: Session, job_id: int, status: JobStatus) -> None:
    """Move the round run by job `job_id` to the status matching the job's (terminal ones stamp the end)."""
    values: dict[str, Any] = {"status": _JOB_TO_ROUND[status]}
    if status in (JobStatus.done, JobStatus.failed, JobStatus.cancelled):
        values["finished_at"] = datetime.now(UTC)
    session.execute(
        update(Round)
        .where(Round.job_id == job_id, Round.status.in_(ACTIVE))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _settle_if_job_ended(session: Session, active: Round) -> bool:
    job = session.get(Job, active.job_id) if active.job_id is not None else None
    if job is None or job.status in (JobStatus.done, JobStatus.failed, JobStatus.cancelled):
        status = job.status if job is not None else JobStatus.failed
        if job is None:
            active.status, active.finished_at = RoundStatus.failed, datetime.now(UTC)
        else:
            settle_rounds_of_job(session, job.id, status)
        session.flush()
        return True
    return False


def pool_size(session: Session, project_id: int) -> int:
    return int(
        session.scalar(select(func.count(Image.id)).where(Image.project_id == project_id, Image.split == Split.pool))
        or 0
    )


def human_labeled_count(session: Session, project_id: int, split: Split | None = Split.pool) -> int:
    query = select(func.count(Image.id)).where(Image.project_id == project_id, Image.status == ImageStatus.labeled)
    if split is not None:
        query = query.where(Image.split == split)
    return int(session.scalar(query) or 0)


def unlabeled_pool_count(session: Session, project_id: int) -> int:
    query = select(func.count(Image.id)).where(
        Image.project_id == project_id, Image.split == Split.pool, Image.status == ImageStatus.unlabeled
    )
    return int(session.scalar(query) or 0)


def resolve_budget(session: Session, project_id: int, budget: int | str) -> int:
    count, percent = parse_budget(budget)
    if count is not None:
        return count
    assert percent is not None
    return max(1, round(percent * pool_size(session, project_id) / 100.0))


def new_round(session: Session, project: Project, body: RoundCreate, *, created_by: int | None, trigger: str) -> Round:
    """Add a queued round (its job is attached by the caller); RoundRunning when one is active. No commit."""
    if human_labeled_count(session, project.id, split=None) == 0:
        raise Conflict(
            f"project {project.id} has no human-labelled image yet; label at least one before a round "
            "(a first set, POST /projects/{project_id}/first-set, ranks the pool without labels)"
        )
    budget = resolve_budget(session, project.id, body.budget)
    params = body.model_dump(mode="json")
    return _add_round(session, project, body.method, body.strategy, budget, params, created_by, trigger)


def new_first_set(session: Session, project: Project, body: FirstSetCreate, *, created_by: int | None) -> Round:
    """Add a queued first-set round (method FIRST_SET, strategy the choice); one round at a time, as for query
    rounds. Conflict when no pool image is left unlabelled to choose from. No commit."""
    if unlabeled_pool_count(session, project.id) == 0:
        raise Conflict(f"project {project.id} has no unlabelled pool image to choose a first set from")
    budget = resolve_budget(session, project.id, body.budget)
    params = body.model_dump(mode="json")
    return _add_round(session, project, FIRST_SET, body.method, budget, params, created_by, "manual")


def _add_round(
    session: Session,
    project: Project,
    method: str,
    strategy: str,
    budget: int,
    params: dict[str, Any],
    created_by: int | None,
    trigger: str,
) -> Round:
    for _ in range(_TRIES):
        active = active_round(session, project.id)
        if active is not None:
            if _settle_if_job_ended(session, active):
                continue
            raise RoundRunning(project.id, active)
        index = int(session.scalar(select(func.max(Round.index)).where(Round.project_id == project.id)) or 0) + 1
        row = Round(
            project_id=project.id,
            index=index,
            method=method,
            strategy=strategy,
            budget=budget,
            status=RoundStatus.queued,
            params=params,
            trigger=trigger,
            labeled_count=human_labeled_count(session, project.id),
            created_by=created_by,
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:  # another request added a round meanwhile (same index or a second active one)
            session.expire_all()
            continue
        return row
    active = active_round(session, project.id)
    if active is not None:
        raise RoundRunning(project.id, active)
    raise Conflict(f"another round of project {project.id} was being started at the same time; try again")


def get_round(session: Session, project_id: int, round_id: int) -> Round:
    row = session.get(Round, round_id)
    if row is None or row.project_id != project_id:
        raise NotFound("round", round_id, within=f"project {project_id}")
    return row


def list_rounds(session: Session, project_id: int) -> list[Round]:
    return list(session.scalars(select(Round).where(Round.project_id == project_id).order_by(Round.index)))


def model_version_of_round(session: Session, round_id: int) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.round_id == round_id).limit(1))


def list_model_versions(session: Session, project_id: int) -> list[ModelVersion]:
    return list(
        session.scalars(select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(ModelVersion.id))
    )


def get_model_version(session: Session, project_id: int, model_version_id: int | None) -> ModelVersion:
    """The given model version of the project, or its latest when `model_version_id` is None."""
    if model_version_id is None:
        latest = session.scalar(
            select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(ModelVersion.id.desc()).limit(1)
        )
        if latest is None:
            raise NotFound("model version", "(latest)", within=f"project {project_id}: no round has finished yet")
        return latest
    found = session.get(ModelVersion, model_version_id)
    if found is None or found.project_id != project_id:
        raise NotFound("model version", model_version_id, within=f"project {project_id}")
    return found


@dataclass(frozen=True)
class ScoreRow:
    image_id: int
    file_name: str
    rank: int
    score: float
    status: str


def round_scores(session: Session, round_id: int, offset: int, limit: int) -> tuple[int, list[ScoreRow]]:
    total = int(session.scalar(select(func.count()).select_from(Score).where(Score.round_id == round_id)) or 0)
    rows = session.execute(
        select(Score.image_id, Image.file_name, Score.rank, Score.score, Image.status)
        .join(Image, Image.id == Score.image_id)
        .where(Score.round_id == round_id)
        .order_by(Score.rank)
        .offset(offset)
        .limit(limit)
    ).all()
    return total, [ScoreRow(i, f, r, s, st.value) for i, f, r, s, st in rows]


def labels_since_last_round(session: Session, project_id: int) -> int:
    """Images whose first human-side mask was saved after the project's latest round began."""
    last_start = session.scalar(
        select(Round.created_at).where(Round.project_id == project_id).order_by(Round.index.desc()).limit(1)
    )
    first_human = (
        select(MaskVersion.image_id, func.min(MaskVersion.created_at).label("first_at"))
        .join(Image, Image.id == MaskVersion.image_id)
        .where(Image.project_id == project_id, MaskVersion.source.in_(HUMAN_SOURCES))
        .group_by(MaskVersion.image_id)
        .subquery()
    )
    query = select(func.count()).select_from(first_human)
    if last_start is not None:
        query = query.where(first_human.c.first_at > last_start)
    return int(session.scalar(query) or 0)


def auto_round_due(session: Session, project: Project) -> RoundCreate | None:
    """The round to start automatically now, or None (off, not enough new labels, or one is active)."""
    if project.auto_round_after is None or active_round(session, project.id) is not None:
        return None
    if labels_since_last_round(session, project.id) < project.auto_round_after:
        return None
    if project.round_defaults is not None:
        return RoundCreate.model_validate(project.round_defaults)
    # The settings of the last query round; a first-set round has none.
    last = session.scalar(
        select(Round)
        .where(Round.project_id == project.id, Round.method != FIRST_SET)
        .order_by(Round.index.desc())
        .limit(1)
    )
    return RoundCreate.model_validate(last.params) if last is not None else RoundCreate()
