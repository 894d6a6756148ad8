"""SAM ready at once, through the real API, Redis and a real worker process: an import job, when it ends, queues a
`sam_embed` job for each of the first MARSLABEL_SAM_QUEUE_HEAD images of the queue (import order), an upload
through the images route does the same once its images are stored, and a query round, once its ranking is stored,
for the head of that new ranking; the interactive worker computes them, so the first images an annotator opens have
their embedding cached before anyone asked (the embedding route answers 200 at once, not 202). A broker that
refuses them never fails the upload."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.app import create_app
from server.db import get_sessionmaker
from server.models import Image, ImageStatus, Job, JobStatus, Role, Split
from server.sam import embedding_cache, served_model
from server.settings import Settings
from tests.factories import make_project, png_bytes
from tests.integration.conftest import TERMINAL, make_project_folder, noise_image, wait_for_job
from tests.integration.test_rounds import ONE_IMAGE, _start, _wait_round, make_synthetic_project
from tests.sam_support import require_models

HEAD = Settings.model_fields["sam_queue_head"].default


def _embedded_all(settings: Settings, job_ids: list[int], image_ids: list[int], worker) -> None:  # type: ignore[no-untyped-def]
    """The jobs are sam_embed jobs of `image_ids` in rank order (an image whose embedding another test's images put
    in the cache already gets none), each ends done, and every image's embedding is then in the cache."""
    factory = get_sessionmaker(settings.resolved_database_url)
    with factory() as check:
        jobs = check.scalars(select(Job).where(Job.id.in_(job_ids)).order_by(Job.id)).all()
        assert {job.kind for job in jobs} <= {"sam_embed"}
        embedded = [int(job.params["image_id"]) for job in jobs]
        assert embedded == [i for i in image_ids if i in embedded]
        shas = dict(check.execute(select(Image.id, Image.sha256).where(Image.id.in_(image_ids))).all())
    for job_id in job_ids:
        done = wait_for_job(factory, job_id, until=lambda row: row.status in TERMINAL, timeout=180)
        assert done.status == JobStatus.done, (done.error, worker.log()[-3000:])
    cache = embedding_cache(settings)
    assert all(cache.contains(served_model(settings), shas[i]) for i in image_ids)


def test_an_import_embeds_the_head_of_the_queue(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers, import_root: Path
) -> None:
    require_models()
    make_project_folder(import_root / "head", HEAD + 4, labeled_every=4, val=2, size=32, seed=7100)  # new images
    project = make_project(session)
    started = job_client.post(
        f"/api/v1/projects/{project.id}/imports", json={"path": "head"}, headers=headers[Role.lead]
    )
    assert started.status_code == 202, started.text
    factory = get_sessionmaker(job_settings.resolved_database_url)
    done = wait_for_job(factory, started.json()["id"], until=lambda row: row.status in TERMINAL, timeout=180)
    assert done.status == JobStatus.done, (done.error, celery_worker.log()[-3000:])

    # The head: unlabeled pool images in import order (val images and labelled ones are never handed out).
    with factory() as check:
        queue = list(
            check.scalars(
                select(Image.id)
                .where(Image.project_id == project.id, Image.split == Split.pool, Image.status == ImageStatus.unlabeled)
                .order_by(Image.import_order, Image.id)
            )
        )
    head = queue[:HEAD]
    assert len(head) == HEAD
    embed = done.result["sam_embed"]
    assert embed["images"] == head and len(embed["jobs"]) == HEAD and "error" not in embed
    _embedded_all(job_settings, embed["jobs"], head, celery_worker)

    # The first image an annotator is handed is SAM-ready at once, and queue/next queues no job for it again.
    claim = job_client.post(f"/api/v1/projects/{project.id}/queue/next", headers=headers[Role.annotator]).json()
    assert claim["image"]["id"] == head[0]
    ready = job_client.get(
        f"/api/v1/projects/{project.id}/images/{head[0]}/sam/embedding", headers=headers[Role.annotator]
    )
    assert ready.status_code == 200
    with factory() as check:
        again = check.scalars(
            select(Job).where(Job.kind == "sam_embed", Job.params["image_id"].as_integer() == head[0])
        ).all()
        assert [job.id for job in again] == [embed["jobs"][0]]


def _files(seeds: range) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"up-{seed}.png", png_bytes(noise_image(seed)), "image/png")) for seed in seeds]


def _pool_queue(settings: Settings, project_id: int) -> list[int]:
    """Unlabeled pool images in import order: the queue before any round."""
    with get_sessionmaker(settings.resolved_database_url)() as check:
        return list(
            check.scalars(
                select(Image.id)
                .where(Image.project_id == project_id, Image.split == Split.pool, Image.status == ImageStatus.unlabeled)
                .order_by(Image.import_order, Image.id)
            )
        )


def test_an_upload_embeds_the_head_of_the_queue(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    require_models()
    project = make_project(session)
    url = f"/api/v1/projects/{project.id}/images"
    # Val images are never handed out: only the pool images uploaded after them make the head.
    val = job_client.post(url, files=_files(range(7200, 7202)), data={"split": "val"}, headers=headers[Role.lead])
    assert val.status_code == 200, val.text
    assert val.json()["sam_embed"] == {"images": [], "jobs": [], "error": None}
    answer = job_client.post(url, files=_files(range(7210, 7210 + HEAD + 3)), headers=headers[Role.lead])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["stored"] == HEAD + 3
    head = _pool_queue(job_settings, project.id)[:HEAD]
    assert head == [item["image_id"] for item in body["items"]][:HEAD]
    embed = body["sam_embed"]
    assert embed["images"] == head and len(embed["jobs"]) == HEAD and embed["error"] is None
    _embedded_all(job_settings, embed["jobs"], head, celery_worker)

    # The next upload finds the head embedded: the same head, no new job; nothing is stored, nothing queued.
    again = job_client.post(url, files=_files(range(7230, 7232)), headers=headers[Role.lead]).json()
    assert again["stored"] == 2 and again["sam_embed"] == {"images": head, "jobs": [], "error": None}
    duplicate = job_client.post(url, files=_files(range(7230, 7231)), headers=headers[Role.lead]).json()
    assert duplicate["stored"] == 0 and duplicate["sam_embed"] is None
    ready = job_client.get(f"{url}/{head[0]}/sam/embedding", headers=headers[Role.annotator])
    assert ready.status_code == 200


def test_an_upload_stands_when_the_broker_refuses_the_embeddings(
    db_url: str, session: Session, headers, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens there once the probe is closed
    down = Settings(database_url=db_url, broker_url=f"redis://127.0.0.1:{closed}/0", data_dir=tmp_path / "data")
    project = make_project(session)
    with TestClient(create_app(down)) as client:
        answer = client.post(
            f"/api/v1/projects/{project.id}/images", files=_files(range(7240, 7243)), headers=headers[Role.lead]
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["stored"] == 3 and [item["status"] for item in body["items"]] == ["stored"] * 3
    embed = body["sam_embed"]
    stored = [item["image_id"] for item in body["items"]]
    assert embed["images"] == stored and len(embed["jobs"]) == 3
    assert "broker is unreachable" in embed["error"] and "could not be queued" in embed["error"]
    factory = get_sessionmaker(db_url)
    with factory() as check:
        assert check.scalars(select(Image.id).where(Image.project_id == project.id).order_by(Image.id)).all() == stored
        jobs = check.scalars(select(Job).where(Job.id.in_(embed["jobs"]))).all()
        assert {(job.kind, job.status) for job in jobs} == {("sam_embed", JobStatus.failed)}
        assert all("broker is unreachable" in job.error for job in jobs)


@pytest.mark.ml
def test_a_round_embeds_the_head_of_its_new_ranking(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    require_models()
    project_id, _truth = make_synthetic_project(session, pool=HEAD + 6, labeled=4, name="head-round")
    response = _start(job_client, headers[Role.lead], project_id, **ONE_IMAGE)
    assert response.status_code == 202, response.text
    round_ = response.json()
    job = _wait_round(job_settings, round_["job_id"], celery_worker)

    scores = job_client.get(
        f"/api/v1/projects/{project_id}/rounds/{round_['id']}/scores", headers=headers[Role.lead]
    ).json()
    ranked = [item["image_id"] for item in scores["items"]]
    assert len(ranked) == HEAD + 2
    embed = job.result["sam_embed"]
    # The new ranking's head, not import order (the round is not yet marked done when it queues them).
    assert embed["images"] == ranked[:HEAD] and "error" not in embed
    _embedded_all(job_settings, embed["jobs"], ranked[:HEAD], celery_worker)
