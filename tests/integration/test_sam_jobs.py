"""SAM jobs on a real worker process: an embedding computed by `sam_embed` after a 202, and automatic masks
stored per labeled image and read back as SAM-Mix candidates."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ml.sam.candidates import AmgCandidateMasks
from server.app import create_app
from server.db import get_sessionmaker
from server.models import JobStatus, Role
from server.sam import auto_masks_dir
from server.settings import Settings
from tests.factories import make_project
from tests.integration.conftest import TERMINAL, wait_for_job
from tests.integration.sam_helpers import scene, upload
from tests.sam_support import iou, require_models


def test_embedding_is_computed_by_a_worker_after_a_202(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers: dict
) -> None:
    require_models()
    project = make_project(session)
    # An upload queues the queue head's embeddings itself (test_sam_ahead.py): off here, so the 202 is this route's.
    no_head = job_settings.model_copy(update={"sam_queue_head": 0})
    with TestClient(create_app(no_head)) as client:
        image_id = upload(client, headers[Role.lead], project.id, scene(seed=31)[0], "w.png")
    url = f"/api/v1/projects/{project.id}/images/{image_id}/sam/embedding"
    pending = job_client.get(url, headers=headers[Role.annotator])
    assert pending.status_code == 202, pending.text
    job_id = pending.json()["job"]["id"]
    done = wait_for_job(
        get_sessionmaker(job_settings.resolved_database_url), job_id, until=lambda j: j.status in TERMINAL
    )
    assert done.status == JobStatus.done, (done.error, celery_worker.log()[-3000:])
    assert done.result is not None and done.result["computed"] is True
    ready = job_client.get(url, headers=headers[Role.annotator])
    assert ready.status_code == 200 and len(ready.content) == 256 * 64 * 64 * 2


def test_automatic_masks_are_stored_as_sam_mix_candidates(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers: dict
) -> None:
    require_models()
    project = make_project(session)
    image, disc = scene(seed=32)
    image_id = upload(job_client, headers[Role.lead], project.id, image, "amg.png")
    started = job_client.post(
        f"/api/v1/projects/{project.id}/sam/auto-masks",
        json={"image_ids": [image_id], "points_per_side": 8},
        headers=headers[Role.lead],
    )
    assert started.status_code == 202, started.text
    done = wait_for_job(
        get_sessionmaker(job_settings.resolved_database_url), started.json()["id"], until=lambda j: j.status in TERMINAL
    )
    assert done.status == JobStatus.done, (done.error, celery_worker.log()[-3000:])
    assert done.result is not None and done.result["masks"] >= 1
    candidates = AmgCandidateMasks(auto_masks_dir(job_settings, project.id))(str(image_id), image, None)
    assert any(iou(mask, disc) > 0.8 for mask in candidates)
    assert all(mask.dtype == np.bool_ for mask in candidates)
