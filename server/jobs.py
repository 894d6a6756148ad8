"""The job protocol's server half: create the row, send the task by name, cancel, reap lost jobs.

The API never imports worker/ (nor torch): a task is sent by its name through a Celery client that
knows only the broker. JOB_KINDS is the one table of job kinds: the queue each goes to, and the handler
(a dotted path that only the worker resolves).

Enqueueing has one way in, used by every caller: `create_job` adds the row to the caller's transaction
(beside whatever goes with it: a round, a claim), then `commit_and_send` commits that transaction and sends
each new job. When the broker refuses a job, the job is failed with the broker's error (committed, so it
can be seen) and BrokerUnavailable is raised: a 503 naming the job. `enqueue_job` is the two steps for a
caller with nothing else to commit.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from server.broker import celery_config, embedded_pending_task_ids
from server.db import session_scope
from server.models import Job, JobStatus
from server.settings import Settings
from server.store.errors import StoreError

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobKind:
    queue: str  # one of QUEUES: which workers take it
    handler: str  # "module:function", resolved by the worker only


# interactive: sub-second work a person waits for (a SAM embedding), on workers of its own so that it never
# queues behind a round; gpu: model work that holds a GPU for minutes; cpu: imports and other file work.
QUEUES = ("interactive", "gpu", "cpu")

# A query round (train → score → rank) is one job, so it holds one GPU from start to end. Automatic masks run
# SAM over every labeled image (minutes), and a first set embeds the whole pool with the encoder, so they are
# long work too.
JOB_KINDS: dict[str, JobKind] = {
    "import": JobKind(queue="cpu", handler="worker.tasks.import_folder:run_import"),
    "sam_embed": JobKind(queue="interactive", handler="worker.tasks.sam_embed:run_sam_embed"),
    "sam_auto_masks": JobKind(queue="gpu", handler="worker.tasks.sam_embed:run_sam_auto_masks"),
    "round": JobKind(queue="gpu", handler="worker.tasks.round:run_round"),
    "first_set": JobKind(queue="gpu", handler="worker.tasks.first_set:run_first_set"),
    "pseudo_label": JobKind(queue="gpu", handler="worker.tasks.pseudo_label:run_pseudo_labels"),
}
KnownJobKind = Literal[tuple(JOB_KINDS)]  # a request naming a kind: an unknown one is a 422 listing these

TERMINAL_STATUSES = frozenset({JobStatus.done, JobStatus.failed, JobStatus.cancelled})
MAX_ATTEMPTS = 3
# Timing, in heartbeat intervals (Settings.job_heartbeat_seconds): a running job beats every half interval and
# is lost when silent for 1.5 (two missed beats and some slack: a CPU-starved live worker is not taken for dead),
# and the reaper looks every half interval, so a job whose worker died is re-queued within 2 intervals. A job
# whose worker ran on the reaper's own host and is gone (kill -9, a crash) is lost at once, without waiting.
BEAT_FRACTION = 0.5
STALE_INTERVALS = 1.5
REAP_FRACTION = 0.5


def beat_seconds(settings: Settings) -> float:
    return BEAT_FRACTION * settings.job_heartbeat_seconds


def reap_seconds(settings: Settings) -> float:
    return max(0.5, REAP_FRACTION * settings.job_heartbeat_seconds)


class BrokerUnavailable(StoreError):
    """The broker refused a job's task. The job is failed (committed); the request answers 503 naming it."""

    status_code = 503

    def __init__(self, detail: str, job_ids: list[int]) -> None:
        super().__init__(detail)
        self.job_ids = job_ids
        self.extra = {"job_ids": job_ids}


def task_name(kind: str) -> str:
    return f"marslabel.{kind}"


def as_utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def stale_cutoff(settings: Settings, now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now - timedelta(seconds=STALE_INTERVALS * settings.job_heartbeat_seconds)


def worker_name() -> str:
    """What a job's row records as its worker: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def dead_local_worker(worker: str | None) -> bool:
    """True when `worker` (a row's worker_name) ran on this host and its process is gone. A zombie counts as
    alive until its parent reaps it (then the supervisor that reaped it asks for a reap)."""
    if not worker or ":" not in worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def new_task_id() -> str:
    return str(uuid.uuid4())


@lru_cache(maxsize=8)
def _client_for(config_json: str) -> Celery:
    from celery import Celery  # kept out of module import: only a route that sends pays for it

    client = Celery("marslabel-api", set_as_current=False)
    client.conf.update(json.loads(config_json))
    return client


def celery_client(settings: Settings) -> Celery:
    """A Celery app that only sends (no task code), one per broker configuration."""
    return _client_for(json.dumps(celery_config(settings), sort_keys=True))


def create_job(
    session: Session, *, kind: str, project_id: int | None, params: dict[str, Any], created_by: int | None
) -> Job:
    """Add a queued job row to the caller's transaction; `commit_and_send` then commits it and sends its task."""
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job(
        kind=kind,
        project_id=project_id,
        params=params,
        created_by=created_by,
        status=JobStatus.queued,
        progress=0.0,
        message="queued",
        celery_task_id=new_task_id(),
    )
    session.add(job)
    session.flush()
    return job


def commit_and_send(session: Session, settings: Settings, jobs: list[Job]) -> None:
    """Commit the caller's transaction (which added `jobs` with `create_job`), then send each job's task.

    Committed first, so that a worker always finds the row its task names. A job the broker refuses is failed
    with the broker's error and committed; once every job was tried, BrokerUnavailable (503) names the failed
    ones. The other jobs of the call were sent and stay queued."""
    session.commit()
    refused: list[Job] = []
    error = ""
    for job in jobs:
        problem = _send(settings, job)
        if problem is not None:
            refused.append(job)
            error = problem
            _mark_unsent(session, job, problem)
    if not refused:
        return
    session.commit()
    ids = [job.id for job in refused]
    log.warning("jobs %s not queued: %s", ids, error)
    named = f"job {ids[0]}" if len(ids) == 1 else f"jobs {', '.join(map(str, ids))}"
    raise BrokerUnavailable(f"{error}; {named} could not be queued and failed; try again later", ids)


def enqueue_job(
    session: Session, settings: Settings, *, kind: str, project_id: int | None, params: dict[str, Any],
    created_by: int | None,
) -> Job:  # fmt: skip
    """`create_job` then `commit_and_send`: the row committed and its task sent, or BrokerUnavailable (503)."""
    job = create_job(session, kind=kind, project_id=project_id, params=params, created_by=created_by)
    commit_and_send(session, settings, [job])
    return job


def _send(settings: Settings, job: Job) -> str | None:
    """Hand the job's task to the broker by name; None when sent, else the broker's error in words."""
    kind = JOB_KINDS[job.kind]
    try:
        celery_client(settings).send_task(
            task_name(job.kind), args=[job.id], queue=kind.queue, task_id=job.celery_task_id
        )
    except Exception as exc:  # kombu raises many kinds (OperationalError, OSError, ...)
        return f"the job broker is unreachable ({type(exc).__name__}: {exc})"
    return None


def _mark_unsent(session: Session, job: Job, error: str) -> None:
    job.status = JobStatus.failed
    job.error = error
    job.message = "could not be queued: the job broker is unreachable"
    job.finished_at = datetime.now(UTC)
    job_status_changed(session, job.id, JobStatus.failed)


def job_status_changed(session: Session, job_id: int, status: JobStatus) -> None:
    """Keep rows that mirror a job (a query round) in step; every change of a job's status calls this."""
    from server.store.rounds import settle_rounds_of_job

    settle_rounds_of_job(session, job_id, status)


def request_cancel(session: Session, settings: Settings, job: Job) -> Job:
    """Ask a job to stop. A queued job is cancelled at once; a running one stops at its next progress report.

    Conditional UPDATEs, so a worker claiming the job at the same moment is never overwritten.
    """
    active = (Job.id == job.id) & Job.status.in_([JobStatus.queued, JobStatus.running])
    session.execute(update(Job).where(active).values(cancel_requested=True))
    cancelled_now = session.execute(
        update(Job)
        .where((Job.id == job.id) & (Job.status == JobStatus.queued))
        .values(status=JobStatus.cancelled, message="cancelled before it started", finished_at=datetime.now(UTC))
    ).rowcount
    if cancelled_now:
        job_status_changed(session, job.id, JobStatus.cancelled)
    session.refresh(job)
    if cancelled_now and job.celery_task_id:
        revoke_task(settings, job.celery_task_id)
    return job


def revoke_task(settings: Settings, task_id: str) -> None:
    # Best effort: the worker also skips a task whose row is cancelled, so a lost revoke does no harm.
    try:
        celery_client(settings).control.revoke(task_id)
    except Exception as exc:
        log.warning("could not revoke task %s: %s", task_id, exc)


@dataclass
class ReapReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)  # queued jobs whose embedded-broker message was lost
    cancelled: list[int] = field(default_factory=list)  # lost jobs that had been asked to cancel


def reap_stale_jobs(settings: Settings, now: datetime | None = None) -> ReapReport:
    """Re-queue (attempts < MAX_ATTEMPTS) or fail every running job whose worker is lost: silent for
    STALE_INTERVALS, or a process of this host that is gone. A lost job that was asked to cancel is cancelled.
    On the embedded broker, also re-send every queued job whose message has gone without the job being claimed.

    Each change is a conditional UPDATE on the task id the job had, so two reapers never both re-queue it,
    and a delivery of the old task id that turns up after all is skipped by the worker's claim.
    """
    report = ReapReport()
    cutoff = stale_cutoff(settings, now)
    url = settings.resolved_database_url
    with session_scope(url) as session:
        stale = session.execute(
            select(
                Job.id, Job.celery_task_id, Job.attempts, Job.worker, Job.heartbeat_at, Job.started_at,
                Job.cancel_requested,
            ).where(Job.status == JobStatus.running)
        ).all()  # fmt: skip
    for job_id, task_id, attempts, worker, heartbeat_at, started_at, cancel_requested in stale:
        last_seen = as_utc(heartbeat_at or started_at)
        if last_seen is not None and last_seen >= cutoff and not dead_local_worker(worker):
            continue
        log.warning("reaper: job %s lost its worker %s (last beat at %s, cutoff %s)", job_id, worker, last_seen, cutoff)
        guard = (Job.id == job_id) & (Job.status == JobStatus.running) & (Job.celery_task_id == task_id)
        if cancel_requested:
            with session_scope(url) as session:
                changed = session.execute(
                    update(Job)
                    .where(guard)
                    .values(
                        status=JobStatus.cancelled,
                        message=f"cancelled (its worker {worker} was lost)",
                        finished_at=datetime.now(UTC),
                    )
                ).rowcount
                if changed:
                    job_status_changed(session, job_id, JobStatus.cancelled)
                    report.cancelled.append(job_id)
            continue
        if attempts >= MAX_ATTEMPTS:
            with session_scope(url) as session:
                changed = session.execute(
                    update(Job)
                    .where(guard)
                    .values(
                        status=JobStatus.failed,
                        error=f"its worker ({worker}) was lost {attempts} times; not retried again",
                        message="worker lost",
                        finished_at=datetime.now(UTC),
                    )
                ).rowcount
                if changed:
                    job_status_changed(session, job_id, JobStatus.failed)
                    report.failed.append(job_id)
            continue
        message = f"re-queued: worker {worker} stopped beating (attempt {attempts} of {MAX_ATTEMPTS})"
        if _resend(settings, job_id, guard, message, report):
            report.requeued.append(job_id)
    if settings.broker_url is None:
        _resend_lost_messages(settings, cutoff, report)
    if report.requeued or report.failed or report.resent or report.cancelled:
        log.warning(
            "reaper: re-queued jobs %s, re-sent jobs %s, failed jobs %s, cancelled jobs %s",
            report.requeued, report.resent, report.failed, report.cancelled,
        )  # fmt: skip
    return report


def _resend_lost_messages(settings: Settings, cutoff: datetime, report: ReapReport) -> None:
    """Queued jobs older than `cutoff` whose message is no longer in the embedded broker's folder."""
    url = settings.resolved_database_url
    with session_scope(url) as session:
        queued = session.execute(
            select(Job.id, Job.celery_task_id, Job.created_at).where(Job.status == JobStatus.queued)
        ).all()
    old = [(job_id, task_id) for job_id, task_id, created in queued if as_utc(created) < cutoff]
    if not old:
        return
    # Listed after the rows were read: a job queued since has no row here, and a message taken since is
    # one whose claim the re-send at worst turns into a skipped stale delivery.
    pending = embedded_pending_task_ids(settings)
    if pending is None:
        return
    for job_id, task_id in old:
        if task_id in pending:
            continue
        log.warning("reaper: queued job %s has no message in the embedded broker (task %s)", job_id, task_id)
        guard = (Job.id == job_id) & (Job.status == JobStatus.queued) & (Job.celery_task_id == task_id)
        if _resend(settings, job_id, guard, "re-sent: its broker message was lost before a worker claimed it", report):
            report.resent.append(job_id)


def _resend(settings: Settings, job_id: int, guard: ColumnElement[bool], message: str, report: ReapReport) -> bool:
    """Give the job a fresh task id (if `guard` still holds), queue it and send it. True when sent; a job
    the broker refused is failed and goes into `report.failed`."""
    url = settings.resolved_database_url
    with session_scope(url) as session:
        changed = session.execute(
            update(Job)
            .where(guard)
            .values(status=JobStatus.queued, celery_task_id=new_task_id(), worker=None, message=message)
        ).rowcount
    if not changed:
        return False
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        problem = _send(settings, job)
        if problem is None:
            return True
        _mark_unsent(session, job, problem)
        report.failed.append(job_id)
        return False
