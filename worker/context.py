"""JobContext: the worker half of the job protocol (DESIGN.md "Data → jobs").

A task claims its row (queued → running), reports progress into it (throttled), beats a heartbeat from a
thread while it works, and ends it done / failed / cancelled. Every write is conditional on the task id
the row holds, so a delivery that the reaper has replaced can never overwrite its successor.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import object_session

from ml.interfaces import Cancelled
from server.db import session_scope
from server.jobs import (
    MAX_ATTEMPTS,
    TERMINAL_STATUSES,
    as_utc,
    beat_seconds,
    dead_local_worker,
    job_status_changed,
    stale_cutoff,
    worker_name,
)
from server.models import Job, JobStatus
from server.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL_S = 0.5
ROW_WAIT_S = 10.0  # a task may arrive before the API's commit is visible


class JobSuperseded(Exception):
    """The row no longer belongs to this delivery (re-queued by the reaper, or finished): stop quietly."""


class JobContext:
    def __init__(
        self,
        settings: Settings,
        job_id: int,
        task_id: str,
        params: dict[str, Any],
        project_id: int | None,
        created_by: int | None = None,
    ):
        self.settings = settings
        self.created_by = created_by
        self.job_id = job_id
        self.task_id = task_id
        self.params = params
        self.project_id = project_id
        self.result: dict[str, Any] = {}  # kept on cancel: what was done before the stop
        self._url = settings.resolved_database_url
        self._last_write = 0.0
        self._stop_beating = threading.Event()

    # ------------------------------------------------------------------------------------- claim
    @classmethod
    def claim(cls, settings: Settings, job_id: int, task_id: str) -> JobContext | None:
        """Move the row queued → running for this delivery; None when this delivery must not run."""
        deadline = time.monotonic() + ROW_WAIT_S
        while True:
            with session_scope(settings.resolved_database_url) as session:
                job = session.execute(select(Job).where(Job.id == job_id).with_for_update()).scalar_one_or_none()
                if job is not None:
                    return cls._claim_row(settings, job, task_id)
            if time.monotonic() > deadline:
                log.error("job %s: no such row; task %s dropped", job_id, task_id)
                return None
            time.sleep(0.2)

    @classmethod
    def _claim_row(cls, settings: Settings, job: Job, task_id: str) -> JobContext | None:
        session = object_session(job)
        assert session is not None
        now = datetime.now(UTC)
        if job.celery_task_id != task_id or job.status in TERMINAL_STATUSES:
            log.info(
                "job %s: delivery %s is stale (row %s, task %s); skipped",
                job.id,
                task_id,
                job.status,
                job.celery_task_id,
            )
            return None
        if job.cancel_requested:
            job.status, job.message, job.finished_at = JobStatus.cancelled, "cancelled before it started", now
            job_status_changed(session, job.id, JobStatus.cancelled)
            return None
        if job.status == JobStatus.running:
            # A re-delivery (acks_late + reject_on_worker_lost): take it over only if its worker is gone.
            last_seen = as_utc(job.heartbeat_at or job.started_at)
            lost = dead_local_worker(job.worker) or last_seen is None or last_seen < stale_cutoff(settings, now)
            if not lost:
                log.info("job %s: still running on %s; re-delivery skipped", job.id, job.worker)
                return None
            if job.attempts >= MAX_ATTEMPTS:
                job.status, job.finished_at = JobStatus.failed, now
                job.error = f"its worker ({job.worker}) was lost {job.attempts} times; not retried again"
                job_status_changed(session, job.id, JobStatus.failed)
                return None
        job.status = JobStatus.running
        job.attempts += 1
        job.worker = worker_name()
        job.started_at = job.heartbeat_at = now
        job.message = "started" if job.attempts == 1 else f"started again (attempt {job.attempts})"
        job.error = None
        job_status_changed(session, job.id, JobStatus.running)
        return cls(settings, job.id, task_id, dict(job.params or {}), job.project_id, job.created_by)

    # ---------------------------------------------------------------------------------- progress
    def _mine(self) -> Any:
        return (Job.id == self.job_id) & (Job.celery_task_id == self.task_id) & (Job.status == JobStatus.running)

    def progress(self, fraction: float, message: str) -> None:
        """ml.interfaces.ProgressFn: write the row (at most every 0.5 s) and stop if a cancel was asked."""
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_write < PROGRESS_MIN_INTERVAL_S:
            return
        self._last_write = now
        with session_scope(self._url) as session:
            values: dict[str, Any] = {
                "progress": min(max(float(fraction), 0.0), 1.0),
                "message": message[:2000],
                "heartbeat_at": datetime.now(UTC),
            }
            if self.result:
                values["result"] = self.result
            changed = session.execute(update(Job).where(self._mine()).values(**values)).rowcount
            cancel = session.execute(select(Job.cancel_requested).where(Job.id == self.job_id)).scalar()
        if not changed:
            raise JobSuperseded(f"job {self.job_id} no longer belongs to task {self.task_id}")
        if cancel:
            raise Cancelled(f"job {self.job_id} cancelled")

    # --------------------------------------------------------------------------------- heartbeat
    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Beat every half heartbeat interval from a thread, so a long step without progress is not 'lost'."""
        thread = threading.Thread(target=self._beat, name=f"job-{self.job_id}-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop_beating.set()
            thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop_beating.wait(beat_seconds(self.settings)):
            try:
                with session_scope(self._url) as session:
                    session.execute(update(Job).where(self._mine()).values(heartbeat_at=datetime.now(UTC)))
            except Exception:
                log.exception("job %s: heartbeat failed", self.job_id)

    # ------------------------------------------------------------------------------------ finish
    def finish(
        self, status: JobStatus, *, result: dict[str, Any] | None = None, error: str | None = None, message: str = ""
    ) -> None:
        values: dict[str, Any] = {"status": status, "finished_at": datetime.now(UTC), "message": message[:2000]}
        if status == JobStatus.done:
            values["progress"] = 1.0
        if result is not None:
            values["result"] = result
        if error is not None:
            values["error"] = error
        with session_scope(self._url) as session:
            if session.execute(update(Job).where(self._mine()).values(**values)).rowcount:
                job_status_changed(session, self.job_id, status)


JobHandler = Callable[[JobContext], dict[str, Any]]


def run_job(settings: Settings, job_id: int, task_id: str, handler: JobHandler) -> str:
    """Claim, run and end one job; returns the status it ended in ('skipped' when not claimed)."""
    ctx = JobContext.claim(settings, job_id, task_id)
    if ctx is None:
        return "skipped"
    with ctx.heartbeat():
        try:
            result = handler(ctx)
        except Cancelled:
            ctx.finish(JobStatus.cancelled, result=ctx.result or None, message="cancelled")
            return JobStatus.cancelled.value
        except JobSuperseded as exc:
            log.warning("%s", exc)
            return "superseded"
        except Exception as exc:
            log.exception("job %s failed", job_id)
            error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}"
            ctx.finish(JobStatus.failed, result=ctx.result or None, error=error, message=f"failed: {exc}")
            return JobStatus.failed.value
    ctx.finish(JobStatus.done, result=result, message="done")
    return JobStatus.done.value
