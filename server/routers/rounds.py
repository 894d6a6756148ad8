"""Query rounds, model versions, pseudo-label jobs, the project's ML settings, and its label-efficiency metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from server.deps import SessionDep, SettingsDep, require
from server.errors import error_responses
from server.job_schemas import JobPublic
from server.metrics_plot import curve_png
from server.models import Job, ModelVersion, Round, User
from server.pseudo_label_schemas import PseudoLabelPlan
from server.round_schemas import (
    CurvePoint,
    FirstSetCreate,
    ModelVersionPublic,
    ProjectMetrics,
    ProjectMlSettings,
    ProjectMlSettingsUpdate,
    PseudoLabelCreate,
    RoundCreate,
    RoundPublic,
    ScoreItem,
    ScorePage,
    check_round_caps,
)
from server.rounds import start_first_set, start_pseudo_labels, start_round
from server.schemas import MAX_INT, PathId
from server.store.class_presence import metrics_with_absent_classes_null
from server.store.confidence import model_confidences
from server.store.projects import get_project
from server.store.pseudo_labels import pseudo_label_counts
from server.store.rounds import (
    get_model_version,
    get_round,
    list_model_versions,
    list_rounds,
    model_version_of_round,
    round_scores,
)

router = APIRouter(tags=["rounds"])
PROJECT = "/projects/{project_id}"


def _public_version(session: Session, version: ModelVersion) -> ModelVersionPublic:
    """The version with a null IoU for every class absent from its validation labels (shown as n/a)."""
    public = ModelVersionPublic.model_validate(version)
    classes = get_project(session, version.project_id).classes
    public.metrics = metrics_with_absent_classes_null(session, version, classes)
    return public


def _public(session: Session, row: Round) -> RoundPublic:
    out = RoundPublic.model_validate(row)
    job = session.get(Job, row.job_id) if row.job_id is not None else None
    out.job = JobPublic.model_validate(job) if job is not None else None
    version = model_version_of_round(session, row.id)
    out.model_version = _public_version(session, version) if version is not None else None
    return out


@router.post(
    PROJECT + "/rounds",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        409,
        503,
        s409="a round of this project is queued or running (`round_id`, `job_id`), or no image has a human label",
    ),
)
def create_round(
    project_id: PathId,
    body: RoundCreate,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("round.start"))],
) -> RoundPublic:
    """Train on every human label plus the unlabelled pool, score the pool, rank it; the queue then serves
    images in that order. One round at a time per project."""
    check_round_caps(body, settings)
    project = get_project(session, project_id)
    row = start_round(session, settings, project, body, user_id=user.id, trigger="manual")
    session.refresh(row)
    return _public(session, row)


@router.post(
    PROJECT + "/first-set",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        409,
        503,
        s409="a round of this project is queued or running (`round_id`, `job_id`), or no pool image is unlabelled",
    ),
)
def create_first_set(
    project_id: PathId,
    body: FirstSetCreate,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("round.start"))],
) -> RoundPublic:
    """Choose the first images to label in a project without labels: a round (method `first-set`, strategy the
    choice) whose `first_set` job ranks `budget` representative unlabelled pool images. Once it is done the
    queue serves them first, as it serves a query round's ranking; it trains no model. Needs no human label;
    409 when no pool image is unlabelled. One round at a time per project."""
    project = get_project(session, project_id)
    row = start_first_set(session, settings, project, body, user_id=user.id)
    session.refresh(row)
    return _public(session, row)


@router.get(PROJECT + "/rounds")
def list_project_rounds(
    project_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("model.read"))]
) -> list[RoundPublic]:
    get_project(session, project_id)
    return [_public(session, row) for row in list_rounds(session, project_id)]


@router.get(PROJECT + "/rounds/{round_id}")
def get_project_round(
    project_id: PathId, round_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("model.read"))]
) -> RoundPublic:
    get_project(session, project_id)
    return _public(session, get_round(session, project_id, round_id))


@router.get(PROJECT + "/rounds/{round_id}/scores")
def get_round_scores(
    project_id: PathId,
    round_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("model.read"))],
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ScorePage:
    """The round's ranking of the pool, best first (rank 1 = label first)."""
    get_project(session, project_id)
    get_round(session, project_id, round_id)
    total, rows = round_scores(session, round_id, offset, limit)
    confidences = model_confidences(session, [r.image_id for r in rows])
    items = [
        ScoreItem.model_validate(r, from_attributes=True).model_copy(
            update={"model_confidence": confidences.get(r.image_id)}
        )
        for r in rows
    ]
    return ScorePage(round_id=round_id, total=total, offset=offset, limit=limit, items=items)


@router.get(PROJECT + "/models")
def list_project_models(
    project_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("model.read"))]
) -> list[ModelVersionPublic]:
    get_project(session, project_id)
    return [_public_version(session, m) for m in list_model_versions(session, project_id)]


@router.get(PROJECT + "/models/{model_version_id}")
def get_project_model(
    project_id: PathId,
    model_version_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("model.read"))],
) -> ModelVersionPublic:
    get_project(session, project_id)
    return _public_version(session, get_model_version(session, project_id, model_version_id))


@router.get(PROJECT + "/pseudo-labels/plan")
def plan_pseudo_labels(
    project_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("pseudo_label.start"))],
    model_version_id: Annotated[
        int | None, Query(ge=1, le=MAX_INT, description="default: the project's latest model version")
    ] = None,
) -> PseudoLabelPlan:
    """What a run would do now: the model version and its validation mIoU, the project's default threshold,
    how many images it would label and how many of those are claimed (skipped now, left for a later run)."""
    project = get_project(session, project_id)
    version = get_model_version(session, project_id, model_version_id)
    metrics = version.metrics or {}
    validation = metrics.get("validation") if isinstance(metrics.get("validation"), dict) else {}
    counts = pseudo_label_counts(session, project_id, version.id)
    miou = metrics.get("miou")
    images = validation.get("images") if validation else None
    pseudo = metrics.get("pseudo_labels") if isinstance(metrics.get("pseudo_labels"), dict) else {}
    teacher = pseudo.get("teacher_miou")
    return PseudoLabelPlan(
        model_version_id=version.id,
        method=version.method,
        round_id=version.round_id,
        labeled_count=version.labeled_count,
        val_miou=float(miou) if isinstance(miou, int | float) else None,
        validation_images=int(images) if isinstance(images, int) else None,
        self_trained=version.method == "self-training",
        teacher_miou=float(teacher) if isinstance(teacher, int | float) else None,
        threshold=project.pseudo_label_threshold,
        images=counts.images,
        claimed=counts.claimed,
    )


@router.post(PROJECT + "/pseudo-labels", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(503))
def create_pseudo_labels(
    project_id: PathId,
    body: PseudoLabelCreate,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("pseudo_label.start"))],
) -> JobPublic:
    """Predict every image without a human label with a model version (default: the latest) and store the
    predictions as model mask versions; human labels are never replaced."""
    project = get_project(session, project_id)
    version = get_model_version(session, project_id, body.model_version_id)
    threshold = body.threshold if body.threshold is not None else project.pseudo_label_threshold
    job = start_pseudo_labels(session, settings, project, version.id, threshold, body.batch_size, user_id=user.id)
    return JobPublic.model_validate(job)


@router.get(PROJECT + "/ml-settings")
def get_ml_settings(
    project_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("project.read"))]
) -> ProjectMlSettings:
    return ProjectMlSettings.model_validate(get_project(session, project_id))


@router.patch(PROJECT + "/ml-settings")
def update_ml_settings(
    project_id: PathId,
    body: ProjectMlSettingsUpdate,
    session: SessionDep,
    settings: SettingsDep,
    _user: Annotated[User, Depends(require("project.update"))],
) -> ProjectMlSettings:
    if body.round_defaults is not None:
        check_round_caps(body.round_defaults, settings, ("body", "round_defaults"))
    project = get_project(session, project_id)
    given = body.model_fields_set
    if "auto_round_after" in given:
        project.auto_round_after = body.auto_round_after
    if "round_defaults" in given:
        project.round_defaults = body.round_defaults.model_dump(mode="json") if body.round_defaults else None
    if "pseudo_label_threshold" in given:
        project.pseudo_label_threshold = body.pseudo_label_threshold
    session.commit()
    return ProjectMlSettings.model_validate(project)


def _curve(session: Session, project_id: int) -> tuple[list[Round], list[CurvePoint]]:
    rounds = list_rounds(session, project_id)
    classes = get_project(session, project_id).classes
    points = []
    for row in rounds:
        version = model_version_of_round(session, row.id)
        if version is None:
            continue
        metrics = metrics_with_absent_classes_null(session, version, classes)
        points.append(
            CurvePoint(
                round_id=row.id,
                round_index=row.index,
                model_version_id=version.id,
                strategy=row.strategy,
                method=row.method,
                labeled_count=row.labeled_count,
                miou=metrics.get("miou"),
                per_class_iou=metrics.get("per_class_iou_by_name") or {},
                validation=metrics.get("validation") or {},
            )
        )
    return rounds, points


@router.get(PROJECT + "/metrics")
def get_metrics(
    project_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("model.read"))]
) -> ProjectMetrics:
    """Every round (labelled count, strategy, status) and the label-efficiency curve: one point per finished
    round, mIoU and per-class IoU on the validation images its model version names."""
    get_project(session, project_id)
    rounds, points = _curve(session, project_id)
    return ProjectMetrics(project_id=project_id, rounds=[_public(session, r) for r in rounds], curve=points)


@router.get(PROJECT + "/metrics/curve.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def get_metrics_png(
    project_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("model.read"))]
) -> Response:
    project = get_project(session, project_id)
    _, points = _curve(session, project_id)
    return Response(curve_png(project.name, points), media_type="image/png", headers={"Cache-Control": "no-cache"})
