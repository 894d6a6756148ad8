"""Jobs API: cancel (queued and running), path checks of imports, roles, and the server-sent-events stream."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.db import get_sessionmaker, session_scope
from server.jobs import create_job
from server.models import Image, JobStatus, Role
from server.settings import Settings
from tests.factories import make_project
from tests.integration.conftest import TERMINAL, make_project_folder, wait_for_job


def test_cancel_running_import_keeps_committed_chunks(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers, import_root: Path
) -> None:
    count = 2000
    make_project_folder(import_root / "big", count, labeled_every=1000, size=16)
    project = make_project(session)
    response = job_client.post(
        f"/api/v1/projects/{project.id}/imports", json={"path": "big"}, headers=headers[Role.lead]
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    factory = get_sessionmaker(job_settings.resolved_database_url)
    wait_for_job(factory, job_id, until=lambda row: row.status == JobStatus.running and row.progress > 0)

    cancelled = job_client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers[Role.lead])
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True
    final = wait_for_job(factory, job_id, until=lambda row: row.status in TERMINAL)
    assert final.status == JobStatus.cancelled, (final.status, final.error)
    stored = final.result["stored"]
    assert 0 < stored < count
    with factory() as check:
        in_db = check.scalar(select(func.count()).select_from(Image).where(Image.project_id == project.id))
    assert in_db == stored  # what was committed stays, and the result says exactly that much


def test_cancel_queued_job_is_immediate(job_client: TestClient, job_settings: Settings, session: Session, headers):
    project = make_project(session)
    with session_scope(job_settings.resolved_database_url) as own:
        job = create_job(own, kind="import", project_id=project.id, params={"path": "x"}, created_by=None)
        job_id = job.id
    assert job_client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers[Role.annotator]).status_code == 403
    body = job_client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers[Role.lead]).json()
    assert body["status"] == "cancelled" and body["finished_at"] is not None
    # Cancelling again changes nothing; an unknown job is a 404.
    assert job_client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers[Role.lead]).json()["status"] == "cancelled"
    assert job_client.post("/api/v1/jobs/999999/cancel", headers=headers[Role.lead]).status_code == 404
    listed = job_client.get(
        f"/api/v1/projects/{project.id}/jobs",
        params={"status": "cancelled", "kind": "import"},
        headers=headers[Role.client],
    ).json()
    assert [j["id"] for j in listed] == [job_id]
    assert (
        job_client.get(
            f"/api/v1/projects/{project.id}/jobs", params={"status": "running"}, headers=headers[Role.client]
        ).json()
        == []
    )


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("../outside", 403, "'..'"),
        ("ok/../../outside", 403, "'..'"),
        ("/etc", 403, "absolute"),
        ("escape-link", 403, "outside the import root"),
        ("missing-folder", 404, "does not exist"),
        ("a-file.txt", 404, "it is a file"),
    ],
)
def test_import_path_is_confined_to_import_root(
    job_client: TestClient,
    session: Session,
    headers,
    import_root: Path,
    tmp_path: Path,
    path: str,
    status: int,
    words: str,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = import_root / "escape-link"
    if not link.is_symlink():
        os.symlink(outside, link)
    (import_root / "a-file.txt").write_text("x")
    project = make_project(session)
    response = job_client.post(
        f"/api/v1/projects/{project.id}/imports", json={"path": path}, headers=headers[Role.lead]
    )
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_import_needs_import_root_and_role(db_url: str, session: Session, headers, tmp_path: Path) -> None:
    project = make_project(session)
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data")  # no import root
    with TestClient(create_app(settings)) as client:
        url = f"/api/v1/projects/{project.id}/imports"
        response = client.post(url, json={"path": "x"}, headers=headers[Role.lead])
        assert response.status_code == 403 and "MARSLABEL_IMPORT_ROOT" in response.json()["detail"]
        assert client.post(url, json={"path": "x"}, headers=headers[Role.annotator]).status_code == 403
        assert client.post(url, json={"path": "x", "layout": "zip"}, headers=headers[Role.lead]).status_code == 422
        assert (
            client.post("/api/v1/projects/424242/imports", json={"path": "x"}, headers=headers[Role.lead]).status_code
            == 404
        )


def test_events_stream_follows_a_job_to_done(
    celery_worker, job_client: TestClient, session: Session, headers, import_root: Path
) -> None:
    make_project_folder(import_root / "streamed", 300, size=16)
    project = make_project(session)
    job = job_client.post(
        f"/api/v1/projects/{project.id}/imports", json={"path": "streamed"}, headers=headers[Role.lead]
    ).json()
    events: list[dict] = []
    with job_client.stream("GET", f"/api/v1/jobs/{job['id']}/events", headers=headers[Role.client]) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name == "job":
                events.append(json.loads(line.split(":", 1)[1]))
    # The stream ended by itself, on the terminal state, after watching the job move.
    assert events[-1]["status"] == "done" and events[-1]["result"]["stored"] == 300
    assert len(events) >= 2
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)
    assert job_client.get("/api/v1/jobs/999999/events", headers=headers[Role.client]).status_code == 404
