"""Jobs: read one, list a project's, cancel, and follow one as server-sent events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from sqlalchemy import select
from sse_starlette import EventSourceResponse, ServerSentEvent

from server.db import session_scope
from server.deps import SessionDep, SettingsDep, require
from server.job_schemas import JobPublic
from server.jobs import TERMINAL_STATUSES, KnownJobKind, reap_stale_jobs, request_cancel
from server.models import Job, JobStatus, User
from server.schemas import PathId
from server.settings import Settings
from server.store.projects import get_project

log = logging.getLogger(__name__)


@asynccontextmanager
async def _reap_on_startup(app: FastAPI) -> AsyncIterator[None]:
    """Jobs left `running` by a worker that died while the API was down are re-queued or failed at start."""
    try:
        await to_thread.run_sync(reap_stale_jobs, app.state.settings)
    except Exception:
        log.exception(
            "job reaper at start-up failed; the reaper beside the API tries again every half heartbeat interval"
        )
    yield


# FastAPI merges a router's lifespan into the app's when the router is included.
router = APIRouter(tags=["jobs"], lifespan=_reap_on_startup)

EVENT_POLL_S = 0.5


def _get_job(session: SessionDep, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id} not found")
    return job


@router.get("/jobs/{job_id}")
def get_job(job_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("job.read"))]) -> JobPublic:
    return JobPublic.model_validate(_get_job(session, job_id))


@router.get("/projects/{project_id}/jobs")
def list_jobs(
    project_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("job.read"))],
    status: Annotated[JobStatus | None, Query(description="only jobs in this state")] = None,
    kind: Annotated[KnownJobKind | None, Query(description="only jobs of this kind")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[JobPublic]:
    get_project(session, project_id)
    query = select(Job).where(Job.project_id == project_id)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    jobs = session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit))
    return [JobPublic.model_validate(j) for j in jobs]


@router.post("/jobs/{job_id}/cancel")
def cancel_job(
    job_id: PathId, session: SessionDep, settings: SettingsDep, _user: Annotated[User, Depends(require("job.cancel"))]
) -> JobPublic:
    job = request_cancel(session, settings, _get_job(session, job_id))
    return JobPublic.model_validate(job)


def _read_job(settings: Settings, job_id: int) -> JobPublic | None:
    with session_scope(settings.resolved_database_url) as session:
        job = session.get(Job, job_id)
        return None if job is None else JobPublic.model_validate(job)


async def _job_events(settings: Settings, job_id: int) -> AsyncIterator[ServerSentEvent]:
    """A `job` event whenever the row changes, until it reaches a terminal state."""
    last = ""
    while True:
        job = await to_thread.run_sync(_read_job, settings, job_id)
        if job is None:
            deleted = {"detail": f"job {job_id} was deleted", "errors": []}  # server.errors.ErrorBody
            yield ServerSentEvent(data=json.dumps(deleted), event="error")
            return
        payload = job.model_dump_json()
        if payload != last:
            last = payload
            yield ServerSentEvent(data=payload, event="job", id=f"{job_id}-{job.progress:.4f}-{job.status.value}")
        if job.status in TERMINAL_STATUSES:
            return
        await asyncio.sleep(EVENT_POLL_S)


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse)
def job_events(
    job_id: PathId, session: SessionDep, settings: SettingsDep, _user: Annotated[User, Depends(require("job.read"))]
) -> EventSourceResponse:
    _get_job(session, job_id)
    return EventSourceResponse(_job_events(settings, job_id), ping=15)
