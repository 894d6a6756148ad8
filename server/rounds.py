"""Starting query rounds, first-set rounds and pseudo-label jobs: the row, its job, the task sent; shared by the
routes and by the auto-round rule that runs after a human label is saved."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from server.jobs import BrokerUnavailable, commit_and_send, create_job, enqueue_job
from server.models import Job, Project, Round
from server.round_schemas import FirstSetCreate, RoundCreate
from server.settings import Settings
from server.store.errors import Conflict
from server.store.rounds import auto_round_due, new_first_set, new_round

log = logging.getLogger(__name__)


def start_round(
    session: Session, settings: Settings, project: Project, body: RoundCreate, *, user_id: int | None, trigger: str
) -> Round:
    """Add the round and its `round` job, commit, and send the task. RoundRunning (409) when one is active;
    BrokerUnavailable (503) when the task could not be sent (the round and job are then failed, and committed)."""
    row = new_round(session, project, body, created_by=user_id, trigger=trigger)
    return _send_round_job(session, settings, row, "round", user_id)


def start_first_set(
    session: Session, settings: Settings, project: Project, body: FirstSetCreate, *, user_id: int
) -> Round:
    """As start_round, for a first-set round and its `first_set` job."""
    row = new_first_set(session, project, body, created_by=user_id)
    return _send_round_job(session, settings, row, "first_set", user_id)


def _send_round_job(session: Session, settings: Settings, row: Round, kind: str, user_id: int | None) -> Round:
    job = create_job(session, kind=kind, project_id=row.project_id, params={"round_id": row.id}, created_by=user_id)
    row.job_id = job.id
    commit_and_send(session, settings, [job])
    return row


def start_pseudo_labels(
    session: Session, settings: Settings, project: Project, model_version_id: int, threshold: float, batch_size: int,
    *, user_id: int | None,
) -> Job:  # fmt: skip
    params = {"model_version_id": model_version_id, "threshold": threshold, "batch_size": batch_size}
    return enqueue_job(session, settings, kind="pseudo_label", project_id=project.id, params=params, created_by=user_id)


def start_auto_round_if_due(session: Session, settings: Settings, project: Project) -> Round | None:
    """After a human label was committed: start the project's automatic round when it is due. Never raises for
    a round that could not start (another request started one, the broker is down): the label is saved."""
    body = auto_round_due(session, project)
    if body is None:
        return None
    try:
        return start_round(session, settings, project, body, user_id=None, trigger="auto")
    except (Conflict, BrokerUnavailable) as error:
        session.rollback()
        log.warning("automatic round of project %s not started: %s", project.id, error)
        return None
