"""A job whose worker dies never stays `running`: re-delivered by the broker, or re-queued by the reaper,
or failed after MAX_ATTEMPTS. Real worker and reaper processes; workers killed with SIGKILL mid-job."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.broker import embedded_broker_dir, embedded_pending_task_ids
from server.db import get_sessionmaker, session_scope
from server.jobs import MAX_ATTEMPTS, create_job, reap_stale_jobs
from server.models import Image, Job, JobStatus, Role
from server.schema import upgrade_to_head
from server.settings import Settings
from server.store.users import create_user
from tests.factories import make_project, project_payload
from tests.integration.conftest import TERMINAL, make_project_folder, start_reaper, start_worker, wait_for_job

COUNT = 2000


@pytest.fixture
def loss_settings(db_url: str, redis_url: str, import_root: Path, tmp_path: Path) -> Settings:
    """A broker database of its own, so that no other worker takes these jobs; a silent job is lost after 6 s
    (1.5 intervals of 4 s; a shorter time would let a CPU-starved but living worker look lost on a busy machine)."""
    own_broker = redis_url.rsplit("/", 1)[0] + "/12"
    redis.Redis.from_url(own_broker).flushdb()
    return Settings(
        database_url=db_url,
        broker_url=own_broker,
        import_root=import_root,
        data_dir=tmp_path / "data",
        job_heartbeat_seconds=4,
    )


def _start_big_import(settings: Settings, session: Session, headers, import_root: Path, name: str) -> tuple[int, int]:
    make_project_folder(import_root / name, COUNT, labeled_every=500, size=16)
    project = make_project(session, name=name)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            f"/api/v1/projects/{project.id}/imports", json={"path": name}, headers=headers[Role.lead]
        )
    assert response.status_code == 202, response.text
    return project.id, response.json()["id"]


def _images(settings: Settings, project_id: int) -> int:
    with get_sessionmaker(settings.resolved_database_url)() as check:
        return check.scalar(select(func.count()).select_from(Image).where(Image.project_id == project_id))


def test_whole_worker_killed_then_reaper_requeues(
    loss_settings: Settings, session: Session, headers, import_root: Path, tmp_path: Path
) -> None:
    project_id, job_id = _start_big_import(loss_settings, session, headers, import_root, "lost-worker")
    factory = get_sessionmaker(loss_settings.resolved_database_url)
    first = start_worker(loss_settings, tmp_path / "first.log")
    try:
        wait_for_job(factory, job_id, until=lambda row: row.status == JobStatus.running and row.progress > 0)
    finally:
        first.kill()  # SIGKILL to the whole process group: no chance to clean up or requeue
    orphan = wait_for_job(factory, job_id, until=lambda row: True)
    assert orphan.status == JobStatus.running and orphan.attempts == 1  # left behind, as a dead machine leaves it
    partial = _images(loss_settings, project_id)
    assert 0 < partial < COUNT

    # No worker is alive: the reaper alone (its own process) finds the job and re-queues it under a new task.
    reaper = start_reaper(loss_settings, tmp_path / "reaper.log")
    try:
        requeued = wait_for_job(factory, job_id, until=lambda row: row.status == JobStatus.queued, timeout=60)
        assert requeued.celery_task_id != orphan.celery_task_id and "re-queued" in requeued.message
        second = start_worker(loss_settings, tmp_path / "second.log")
        try:
            final = wait_for_job(factory, job_id, until=lambda row: row.status in TERMINAL, timeout=180)
        finally:
            second.stop()
    finally:
        reaper.stop()
    assert final.status == JobStatus.done, (final.error, second.log()[-3000:])
    assert final.attempts == 2 and final.celery_task_id != orphan.celery_task_id  # the reaper sent it anew
    # The re-run found what the first run had committed; nothing is stored twice.
    assert final.result["duplicate"] == partial and final.result["stored"] == COUNT - partial
    assert _images(loss_settings, project_id) == COUNT


def test_pool_process_killed_then_broker_redelivers(
    loss_settings: Settings, session: Session, headers, import_root: Path, tmp_path: Path
) -> None:
    # No reaper runs here, so that only the broker's re-delivery can bring the job back.
    loss_settings = loss_settings.model_copy(update={"job_heartbeat_seconds": 10})
    project_id, job_id = _start_big_import(loss_settings, session, headers, import_root, "lost-child")
    factory = get_sessionmaker(loss_settings.resolved_database_url)
    worker = start_worker(loss_settings, tmp_path / "worker.log", pool="prefork")
    try:
        running = wait_for_job(factory, job_id, until=lambda row: row.status == JobStatus.running and row.progress > 0)
        child_pid = int(running.worker.rpartition(":")[2])
        assert child_pid != worker.process.pid  # the pool process that runs the job, not the worker itself
        os.kill(child_pid, signal.SIGKILL)
        final = wait_for_job(factory, job_id, until=lambda row: row.status in TERMINAL, timeout=180)
    finally:
        worker.stop()
    assert final.status == JobStatus.done, (final.error, worker.log()[-3000:])
    # acks_late + reject_on_worker_lost: the same delivery came back and a new pool process took it over.
    assert final.attempts == 2 and final.celery_task_id == running.celery_task_id
    assert final.result["stored"] + final.result["duplicate"] == COUNT
    assert _images(loss_settings, project_id) == COUNT


def test_reaper_requeues_then_fails_after_max_attempts(loss_settings: Settings, session: Session) -> None:
    project = make_project(session)
    url = loss_settings.resolved_database_url
    # Silent for 30 s: lost for this reaper (6 s); its worker is on another host, so only its silence counts.
    long_ago = datetime.now(UTC) - timedelta(seconds=30)
    with session_scope(url) as own:
        ids = {}
        for name, attempts, beat in [
            ("lost", 1, long_ago),
            ("exhausted", MAX_ATTEMPTS, long_ago),
            ("alive", 1, datetime.now(UTC)),
            ("cancelling", 1, long_ago),  # a cancel asked of a job whose worker is gone: nobody else ends it
        ]:
            job = create_job(own, kind="import", project_id=project.id, params={"path": name}, created_by=None)
            job.status, job.attempts, job.heartbeat_at, job.worker = JobStatus.running, attempts, beat, "gone:1"
            job.cancel_requested = name == "cancelling"
            ids[name] = (job.id, job.celery_task_id)

    report = reap_stale_jobs(loss_settings)
    assert report.requeued == [ids["lost"][0]] and report.failed == [ids["exhausted"][0]]
    assert report.cancelled == [ids["cancelling"][0]]
    with get_sessionmaker(url)() as check:
        lost, exhausted, alive, cancelling = (
            check.get(Job, ids[n][0]) for n in ("lost", "exhausted", "alive", "cancelling")
        )
        assert lost.status == JobStatus.queued and lost.celery_task_id != ids["lost"][1]
        assert exhausted.status == JobStatus.failed and "lost 3 times" in exhausted.error
        assert alive.status == JobStatus.running
        assert cancelling.status == JobStatus.cancelled and cancelling.finished_at is not None
    # The re-queued task really went to the broker, under its new id, on the import queue.
    queued = redis.Redis.from_url(loss_settings.broker_url).lrange("cpu", 0, -1)
    assert any(lost.celery_task_id.encode() in message for message in queued)
    # A second reaper pass finds nothing more to do.
    again = reap_stale_jobs(loss_settings)
    assert again.requeued == [] and again.failed == []


def test_embedded_message_taken_by_a_worker_that_died_before_its_claim_is_resent(
    import_root: Path, tmp_path: Path
) -> None:
    """The filesystem broker deletes a message file when a worker takes it and never re-delivers: a worker
    that dies before claiming the job loses the message, and only the reaper's look at the folder finds it."""
    settings = Settings(data_dir=tmp_path / "var", import_root=import_root, job_heartbeat_seconds=2)
    url = settings.resolved_database_url
    upgrade_to_head(url)
    with session_scope(url) as own:
        _user, token = create_user(own, "lead", Role.lead)
    auth = {"Authorization": f"Bearer {token}"}
    make_project_folder(import_root / "embedded-lost", 6, size=16)
    make_project_folder(import_root / "embedded-waiting", 4, size=16, seed=100)
    with TestClient(create_app(settings)) as client:
        project = client.post("/api/v1/projects", json=project_payload("embedded"), headers=auth).json()
        imports = f"/api/v1/projects/{project['id']}/imports"
        lost_id = client.post(imports, json={"path": "embedded-lost"}, headers=auth).json()["id"]
        waiting_id = client.post(imports, json={"path": "embedded-waiting"}, headers=auth).json()["id"]
    factory = get_sessionmaker(url)
    with factory() as check:
        lost_task, waiting_task = (check.get(Job, i).celery_task_id for i in (lost_id, waiting_id))
    assert embedded_pending_task_ids(settings) == {lost_task, waiting_task}
    taken = [p for p in (embedded_broker_dir(settings) / "queue").glob("*.msg") if lost_task in p.read_text()]
    assert len(taken) == 1
    taken[0].unlink()  # what a worker that took the message and died leaves behind

    assert reap_stale_jobs(settings).resent == []  # young: it may be in a living worker's hands, being claimed
    later = datetime.now(UTC) + timedelta(seconds=60)
    report = reap_stale_jobs(settings, now=later)
    assert report.resent == [lost_id] and report.requeued == [] and report.failed == []
    with factory() as check:
        lost, waiting = check.get(Job, lost_id), check.get(Job, waiting_id)
        assert lost.status == JobStatus.queued and lost.celery_task_id != lost_task and "lost" in lost.message
        assert waiting.celery_task_id == waiting_task  # its message still waits in the folder: untouched
    assert embedded_pending_task_ids(settings) == {lost.celery_task_id, waiting_task}
    assert reap_stale_jobs(settings, now=later).resent == []  # nothing more to do

    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        for job_id in (lost_id, waiting_id):
            final = wait_for_job(factory, job_id, until=lambda row: row.status in TERMINAL, timeout=120)
            assert final.status == JobStatus.done, (final.error, worker.log()[-3000:])
    finally:
        worker.stop()
    with factory() as check:
        stored = check.scalar(select(func.count()).select_from(Image).where(Image.project_id == project["id"]))
    assert stored == 10
