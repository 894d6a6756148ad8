"""One way to enqueue a job (server.jobs.create_job + commit_and_send), one answer when the broker is down: every
route that starts a job answers 503 naming it, and the job stays in the table, failed with the broker's error.
Work started as a side effect (SAM embeddings ahead of `queue/next`, an automatic round after a save) is failed
the same way without undoing the request that started it. The broker is really unreachable: a Redis URL on a
port where nothing listens."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.app import create_app
from server.db import get_sessionmaker
from server.demo import S5MARS_CLASSES
from server.models import Job, JobStatus, ModelVersion, Role, Round
from server.settings import Settings
from tests.factories import add_synthetic_scenes, make_project, png_bytes

ROUND = {"method": "supervised", "strategy": "random", "budget": 1, "profile": "cpu", "steps": 4, "crop_size": 32}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again on leaving: nothing listens there


@pytest.fixture
def down_settings(db_url: str, import_root: Path, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        broker_url=f"redis://127.0.0.1:{_closed_port()}/0",
        import_root=import_root,
        data_dir=tmp_path / "data",
    )


@pytest.fixture
def down_client(down_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(down_settings)) as client:
        yield client


def _jobs(settings: Settings, project_id: int) -> list[Job]:
    with get_sessionmaker(settings.resolved_database_url)() as check:
        jobs = list(check.scalars(select(Job).where(Job.project_id == project_id).order_by(Job.id)))
        check.expunge_all()
    return jobs


def _assert_503_with_failed_job(response, settings: Settings, project_id: int, kind: str) -> Job:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text
    body = response.json()
    job = _jobs(settings, project_id)[-1]
    assert job.kind == kind and body["job_ids"] == [job.id]
    assert f"job {job.id} could not be queued" in body["detail"] and "broker is unreachable" in body["detail"]
    assert job.status == JobStatus.failed and "broker is unreachable" in job.error and job.finished_at is not None
    return job


def test_every_route_that_starts_a_job_answers_503_and_keeps_the_job_failed(
    down_client: TestClient, down_settings: Settings, session: Session, headers, import_root: Path
) -> None:
    project = make_project(session, "down", S5MARS_CLASSES)
    truth = add_synthetic_scenes(session, project, pool=6, labeled=2, val=0, size=32)
    (import_root / "down-drop").mkdir(exist_ok=True)
    lead, annotator = headers[Role.lead], headers[Role.annotator]
    base = f"/api/v1/projects/{project.id}"

    imported = down_client.post(f"{base}/imports", json={"path": "down-drop"}, headers=lead)
    _assert_503_with_failed_job(imported, down_settings, project.id, "import")

    started = down_client.post(f"{base}/rounds", json=ROUND, headers=lead)
    job = _assert_503_with_failed_job(started, down_settings, project.id, "round")
    with get_sessionmaker(down_settings.resolved_database_url)() as check:
        assert check.scalar(select(Round.status).where(Round.job_id == job.id)) == "failed"
    # The failed round does not block the next request: it too gets 503, not 409.
    assert down_client.post(f"{base}/rounds", json=ROUND, headers=lead).status_code == 503
    first_set = down_client.post(f"{base}/first-set", json={"budget": 2}, headers=lead)
    job = _assert_503_with_failed_job(first_set, down_settings, project.id, "first_set")
    with get_sessionmaker(down_settings.resolved_database_url)() as check:
        assert check.scalar(select(Round.status).where(Round.job_id == job.id)) == "failed"

    with get_sessionmaker(down_settings.resolved_database_url)() as own:
        version = ModelVersion(
            project_id=project.id,
            method="supervised",
            config={},
            labeled_count=2,
            artifact_path="x",
            artifact_sha256="",
        )
        own.add(version)
        own.commit()
        version_id = version.id
    pseudo = down_client.post(f"{base}/pseudo-labels", json={"model_version_id": version_id}, headers=lead)
    _assert_503_with_failed_job(pseudo, down_settings, project.id, "pseudo_label")

    auto = down_client.post(f"{base}/sam/auto-masks", json={}, headers=lead)
    _assert_503_with_failed_job(auto, down_settings, project.id, "sam_auto_masks")

    image_id = sorted(truth)[-1]
    embedding = down_client.get(f"{base}/images/{image_id}/sam/embedding", headers=annotator)
    _assert_503_with_failed_job(embedding, down_settings, project.id, "sam_embed")
    # Asked again: a new job (the failed one is not waited on), and again a 503 naming it.
    again = down_client.get(f"{base}/images/{image_id}/sam/embedding", headers=annotator)
    assert (
        _assert_503_with_failed_job(again, down_settings, project.id, "sam_embed").id
        != _jobs(down_settings, project.id)[-2].id
    )


def test_side_effect_jobs_fail_without_undoing_the_request(
    down_client: TestClient, down_settings: Settings, session: Session, headers
) -> None:
    project = make_project(session, "side", S5MARS_CLASSES)
    truth = add_synthetic_scenes(session, project, pool=6, labeled=2, val=0, size=32)
    base = f"/api/v1/projects/{project.id}"
    annotator = headers[Role.annotator]

    claim = down_client.post(f"{base}/queue/next", headers=annotator)
    assert claim.status_code == 200, claim.text
    claimed = claim.json()["image"]["id"]
    embeds = _jobs(down_settings, project.id)
    assert embeds and all(j.kind == "sam_embed" and j.status == JobStatus.failed for j in embeds)
    assert claimed in {j.params["image_id"] for j in embeds}
    # The claim stands: asked again, the annotator gets the same image.
    assert down_client.post(f"{base}/queue/next", headers=annotator).json()["image"]["id"] == claimed

    settings_response = down_client.patch(
        f"{base}/ml-settings", json={"auto_round_after": 1, "round_defaults": ROUND}, headers=headers[Role.lead]
    )
    assert settings_response.status_code == 200, settings_response.text
    saved = down_client.post(
        f"{base}/images/{claimed}/masks",
        files={"mask": ("m.png", png_bytes(truth[claimed]), "image/png")},
        headers=annotator,
    )
    assert saved.status_code == 201, saved.text
    rounds = [j for j in _jobs(down_settings, project.id) if j.kind == "round"]
    assert len(rounds) == 1 and rounds[0].status == JobStatus.failed and "broker is unreachable" in rounds[0].error
