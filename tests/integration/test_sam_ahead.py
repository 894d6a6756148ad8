"""SAM ready at once, through the real API, Redis and a real worker process: an import job, when it ends, queues a
`sam_embed` job for each of the first MARSLABEL_SAM_QUEUE_HEAD images of the queue (import order), and a query round,
once its ranking is stored, for the head of that new ranking; the interactive worker computes them, so the first
images an annotator opens have their embedding cached before anyone asked (the embedding route answers 200 at
once, not 202)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import get_sessionmaker
from server.models import Image, ImageStatus, Job, JobStatus, Role, Split
from server.sam import embedding_cache, served_model
from server.settings import Settings
from tests.factories import make_project
from tests.integration.conftest import TERMINAL, make_project_folder, wait_for_job
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
