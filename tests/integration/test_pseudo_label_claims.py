"""Pseudo-labels and annotators' claims, through the real API, a real Celery worker and PostgreSQL: the plan
(GET …/pseudo-labels/plan) names the model, its val mIoU, the default threshold and how many images a run would
touch and how many of those are claimed; a run leaves a claimed image alone (no model mask under an open
edit) and counts it; once the claim is given back a later run labels it. The model version is a real, untrained
DeepLabV3+ checkpoint (training one is test_rounds.py's business); its weights go through the worker's own
loading and sha256 check."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ml.sam.models import sha256_of
from server.db import get_sessionmaker
from server.demo import S5MARS_CLASSES
from server.models import JobStatus, MaskSource, MaskVersion, ModelVersion, Role
from server.settings import Settings
from tests.factories import add_synthetic_scenes, make_project
from tests.integration.conftest import TERMINAL, wait_for_job

pytestmark = pytest.mark.ml
SIZE = 64
VAL_MIOU = 0.42


def untrained_model_version(
    session: Session,
    project_id: int,
    folder: Path,
    *,
    teacher_miou: float | None = None,
    logit_scale: float = 1.0,
) -> int:
    """A model version row whose artifact is a real checkpoint (ml.checkpoint format) of an untrained network,
    initialised from a fixed seed; with `teacher_miou`, recorded as a self-trained student whose teacher scored
    that. `logit_scale` multiplies the segmentation head: an untrained head's logits are nearly equal, so its
    confidence takes only a few levels over an image, too few for a test that needs pixels on both sides of one."""
    import torch

    from ml import checkpoint
    from ml.network import build_model

    config = {"encoder": "lite0", "num_classes": len(S5MARS_CLASSES), "decoder_dropout": False, "amp": False}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_model("lite0", len(S5MARS_CLASSES), False, pretrained=False)
    state = {k: v * logit_scale if "segmentation_head" in k else v for k, v in net.state_dict().items()}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("untrained.pt" if teacher_miou is None else "untrained-student.pt")
    checkpoint.save({"config": config, "modules": {"model": state}, "predict_with": ["model"]}, path)
    row = ModelVersion(
        project_id=project_id,
        round_id=None,
        method="supervised" if teacher_miou is None else "self-training",
        config=config,
        metrics={"miou": VAL_MIOU, "validation": {"source": "val split", "images": 2}}
        | ({} if teacher_miou is None else {"pseudo_labels": {"threshold": 0.9, "teacher_miou": teacher_miou}}),
        labeled_count=2,
        artifact_path=str(path),
        artifact_sha256=sha256_of(path),
    )
    session.add(row)
    session.commit()
    return row.id


def _wait(settings: Settings, job_id: int, worker):  # type: ignore[no-untyped-def]
    factory = get_sessionmaker(settings.resolved_database_url)
    done = wait_for_job(factory, job_id, until=lambda row: row.status in TERMINAL, timeout=300)
    assert done.status == JobStatus.done, (done.error, worker.log()[-4000:])
    return done


def test_a_claimed_image_is_skipped_and_picked_up_by_a_later_run(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers, tmp_path: Path
) -> None:
    project = make_project(session, "claims", S5MARS_CLASSES)
    add_synthetic_scenes(session, project, pool=6, labeled=2, val=2, size=SIZE)
    model_id = untrained_model_version(session, project.id, tmp_path / "weights")
    lead, annotator = headers[Role.lead], headers[Role.annotator]
    base = f"/api/v1/projects/{project.id}"

    claimed = job_client.post(f"{base}/queue/next", headers=annotator).json()["image"]["id"]
    plan = job_client.get(f"{base}/pseudo-labels/plan", params={"model_version_id": model_id}, headers=lead)
    assert plan.status_code == 200, plan.text
    assert plan.json() == {
        "model_version_id": model_id,
        "method": "supervised",
        "round_id": None,
        "labeled_count": 2,
        "val_miou": VAL_MIOU,
        "validation_images": 2,
        "self_trained": False,  # a plain supervised model: the dialog suggests a self-trained round first
        "teacher_miou": None,
        "threshold": 0.0,  # the project's default
        "images": 4,  # the unlabelled pool images; labelled pool and val images are not touched
        "claimed": 1,
    }
    # The plan is the lead's, like starting the run.
    assert job_client.get(f"{base}/pseudo-labels/plan", headers=annotator).status_code == 403

    job = job_client.post(f"{base}/pseudo-labels", json={"model_version_id": model_id, "threshold": 0}, headers=lead)
    assert job.status_code == 202, job.text
    done = _wait(job_settings, job.json()["id"], celery_worker)
    assert done.result["total"] == 4
    assert done.result["stored"] == 3 and done.result["skipped_claimed"] == 1 and done.result["skipped_human"] == 0
    with get_sessionmaker(job_settings.resolved_database_url)() as check:
        assert check.scalars(select(MaskVersion).where(MaskVersion.image_id == claimed)).all() == []

    # The annotator leaves the image; the plan now counts it, unclaimed, and a later run labels it.
    assert job_client.post(f"{base}/queue/skip", json={"image_id": claimed}, headers=annotator).status_code < 300
    plan = job_client.get(f"{base}/pseudo-labels/plan", headers=lead).json()  # default: the latest model
    assert (plan["model_version_id"], plan["images"], plan["claimed"]) == (model_id, 1, 0)
    job = job_client.post(f"{base}/pseudo-labels", json={"model_version_id": model_id}, headers=lead)
    done = _wait(job_settings, job.json()["id"], celery_worker)
    assert done.result["stored"] == 1 and done.result["skipped_claimed"] == 0
    with get_sessionmaker(job_settings.resolved_database_url)() as check:
        versions = check.scalars(select(MaskVersion).where(MaskVersion.image_id == claimed)).all()
        assert [(v.source, v.model_version_id) for v in versions] == [(MaskSource.model, model_id)]
