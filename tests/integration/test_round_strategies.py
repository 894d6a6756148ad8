"""Every strategy family the API accepts runs end to end through a real worker on a tiny schedule, through the
one round function (ml.al_round): single-map scorers, MC dropout (bald), two-branch disagreement, class-weighted
rare-class UEQ, random; warm start from the project's previous model of the same method; self-training."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ml import checkpoint
from ml.profiles import SELF_TRAINING_TEACHER
from ml.sam.models import sha256_of
from server.db import get_sessionmaker
from server.models import ModelVersion, Role, Score
from server.settings import Settings
from tests.integration.test_rounds import TINY, _start, _wait_round, make_synthetic_project

pytestmark = pytest.mark.ml

FAMILIES = [
    ("supervised", "random"),
    ("supervised", "entropy"),  # one probability map: entropy, least-confidence, margin, ueq, ueq-product
    ("supervised", "bald"),  # MC dropout passes (decoder dropout)
    ("cps-mars", "ueq+disagreement"),  # the two branches' maps
    ("s5mars", "ueq+rare-class"),  # class weights from the labelled pixels
]


@pytest.mark.parametrize(("method", "strategy"), FAMILIES, ids=[f"{m}-{s}" for m, s in FAMILIES])
def test_strategy_family_ranks_the_pool(
    method: str, strategy: str, celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    project_id, _ = make_synthetic_project(session, name=f"{method}-{strategy}")
    response = _start(job_client, headers[Role.lead], project_id, method=method, strategy=strategy, budget=2, **TINY)
    assert response.status_code == 202, response.text
    job = _wait_round(job_settings, response.json()["job_id"], celery_worker)
    assert job.result["scored"] == 8 and job.result["warm_start"] is False
    with get_sessionmaker(job_settings.resolved_database_url)() as check:
        version = check.scalars(select(ModelVersion).where(ModelVersion.project_id == project_id)).one()
        assert version.method == method and version.config["strategy"] == strategy
        ranks = check.scalars(select(Score.rank).where(Score.round_id == version.round_id).order_by(Score.rank))
        assert list(ranks) == list(range(1, 9))
    # The model version is a checkpoint that `marslabel evaluate` reads.
    assert checkpoint.load(Path(version.artifact_path))["finished"] is True


def test_warm_start_then_self_training(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    project_id, _ = make_synthetic_project(session, name="warm")
    lead = headers[Role.lead]
    first = _start(job_client, lead, project_id, method="cps-mars", strategy="ueq", budget=2, **TINY).json()
    _wait_round(job_settings, first["job_id"], celery_worker)
    factory = get_sessionmaker(job_settings.resolved_database_url)
    with factory() as check:
        first_model = check.scalars(select(ModelVersion).where(ModelVersion.round_id == first["id"])).one()
        first_artifact = first_model.artifact_path

    # cpu profile: the second cps-mars round starts from the first's model, and self-trains its final model, taught
    # by a supervised model of the human labels (ST++) while the round's cps-mars model ranks the pool.
    second = _start(
        job_client,
        lead,
        project_id,
        method="cps-mars",
        strategy="ueq",
        budget=2,
        self_training={"threshold": 0.5, "class_keep": 0.5, "steps": 3, "teacher": "supervised"},
        **TINY,
    )
    assert second.status_code == 202, second.text
    job = _wait_round(job_settings, second.json()["job_id"], celery_worker)
    assert job.result["warm_start"] is True
    assert {"train", "teacher", "pseudo_label", "student", "evaluate", "score"} <= set(job.result["seconds"])
    with factory() as check:
        model = check.scalars(select(ModelVersion).where(ModelVersion.round_id == second.json()["id"])).one()
        assert model.method == "self-training"
        assert model.metrics["warm_start_from"] == first_artifact
        assert model.metrics["pseudo_labels"]["threshold"] == 0.5
        assert model.metrics["pseudo_labels"]["teacher"] == "supervised"
        assert model.metrics["pseudo_labels"]["class_keep"] == 0.5
        assert all(t <= 0.5 for t in model.metrics["pseudo_labels"]["class_thresholds"])
        # The teacher is scored on the same val images as the student, so what self-training added is on record.
        assert 0.0 <= model.metrics["pseudo_labels"]["teacher_miou"] <= 1.0
        assert "evaluate_teacher" in model.metrics["seconds"]
    # The pseudo-label plan says it is self-trained and names its teacher's figure beside its own.
    plan = job_client.get(f"/api/v1/projects/{project_id}/pseudo-labels/plan", headers=lead).json()
    assert (plan["model_version_id"], plan["self_trained"]) == (model.id, True)
    assert plan["teacher_miou"] == model.metrics["pseudo_labels"]["teacher_miou"]
    assert plan["val_miou"] == model.metrics["miou"]
    # The training folder (teacher, pseudo-labels, student) is gone once the model version is stored, and the
    # round's own cps-mars model is kept beside the student.
    assert not (job_settings.artifacts_dir / "training" / f"job-{second.json()['job_id']}").exists()
    method_model = model.metrics["method_model"]
    assert (method_model["method"], method_model["encoder"]) == ("cps-mars", model.config["encoder"])
    assert sha256_of(Path(method_model["artifact_path"])) == method_model["artifact_sha256"]
    assert method_model["artifact_path"] not in (first_artifact, model.artifact_path)
    assert checkpoint.load(Path(method_model["artifact_path"]))["finished"] is True

    # The next cps-mars round starts from the self-trained round's cps-mars model, not from its student nor from
    # the older first round's model: what the simulator does (RoundResult.warm_start_source).
    after = _start(job_client, lead, project_id, method="cps-mars", strategy="ueq", budget=2, **TINY).json()
    _wait_round(job_settings, after["job_id"], celery_worker)
    with factory() as check:
        model = check.scalars(select(ModelVersion).where(ModelVersion.round_id == after["id"])).one()
        assert model.metrics["warm_start_from"] == method_model["artifact_path"]
        assert "method_model" not in model.metrics

    # A cold start is asked for explicitly; a self-training request that names no teacher gets the profile's, and
    # the model version says which it was. One that names its student's encoder gets it.
    third = _start(job_client, lead, project_id, method="cps-mars", strategy="ueq", budget=2, warm_start=False,
                   self_training={"steps": 2, "encoder": "lite2"}, **TINY).json()  # fmt: skip
    assert third["params"]["self_training"]["teacher"] is None
    job = _wait_round(job_settings, third["job_id"], celery_worker)
    assert job.result["warm_start"] is False
    with factory() as check:
        model = check.scalars(select(ModelVersion).where(ModelVersion.round_id == third["id"])).one()
        assert model.metrics["pseudo_labels"]["teacher"] == SELF_TRAINING_TEACHER["cpu"]
        assert model.config["encoder"] == "lite2"
        assert model.metrics["method_model"]["encoder"] == "lite0"


def test_self_training_threshold_out_of_range_is_refused(job_client: TestClient, session: Session, headers) -> None:
    project_id, _ = make_synthetic_project(session, name="bad-st")
    response = _start(
        job_client,
        headers[Role.lead],
        project_id,
        method="supervised",
        strategy="random",
        budget=1,
        self_training={"threshold": 1.5},
        **TINY,
    )
    assert response.status_code == 422 and "threshold" in response.text


@pytest.mark.parametrize(("field", "value"), [("teacher", "committee"), ("encoder", "vit")])
def test_an_unknown_self_training_teacher_or_student_encoder_is_refused(
    job_client: TestClient, session: Session, headers, field: str, value: str
) -> None:
    project_id, _ = make_synthetic_project(session, name=f"bad-{field}")
    response = _start(
        job_client,
        headers[Role.lead],
        project_id,
        method="cps-mars",
        strategy="ueq",
        budget=1,
        self_training={field: value},
        **TINY,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][-2:] == ["self_training", field]
    assert job_client.get(f"/api/v1/projects/{project_id}/rounds", headers=headers[Role.lead]).json() == []


def test_self_training_steps_over_the_profile_cap_are_refused(
    job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    project_id, _ = make_synthetic_project(session, name="st-cap")
    cap = job_settings.round_caps("cpu")["steps"][0]
    response = _start(
        job_client,
        headers[Role.lead],
        project_id,
        method="supervised",
        strategy="random",
        budget=1,
        self_training={"steps": cap + 1},
        **TINY,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][-2:] == ["self_training", "steps"]
    assert "MARSLABEL_MAX_ROUND_STEPS_CPU" in response.text
    assert job_client.get(f"/api/v1/projects/{project_id}/rounds", headers=headers[Role.lead]).json() == []
