"""Which classes a model version's validation labels hold, so that a class absent from them gets no IoU (null,
shown n/a) instead of the 0.0 the evaluation gives a class that was only predicted: the mIoU already leaves
such classes out. The labels are those the evaluation read: each validation image's newest human-side mask
(source human or sam) saved before the model version; their class ids are stored with every mask version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import MaskSource, MaskVersion, ModelVersion

HUMAN_SOURCES = (MaskSource.human, MaskSource.sam)


def validation_classes(session: Session, version: ModelVersion) -> set[int] | None:
    """Class ids in the validation labels of `version`, or None when its metrics name no validation images."""
    validation = (version.metrics or {}).get("validation")
    ids = validation.get("image_ids") if isinstance(validation, dict) else None
    if not isinstance(ids, list) or not ids:
        return None
    rows = session.execute(
        select(MaskVersion.image_id, MaskVersion.version, MaskVersion.class_ids).where(
            MaskVersion.image_id.in_([int(i) for i in ids]),
            MaskVersion.source.in_(HUMAN_SOURCES),
            MaskVersion.created_at <= version.created_at,
        )
    ).all()
    newest: dict[int, tuple[int, list[int]]] = {}
    for image_id, number, class_ids in rows:
        if image_id not in newest or number > newest[image_id][0]:
            newest[image_id] = (number, class_ids or [])
    return {int(c) for _, class_ids in newest.values() for c in class_ids}


def metrics_with_absent_classes_null(
    session: Session, version: ModelVersion, classes: list[dict[str, Any]]
) -> dict[str, Any]:
    """A copy of the version's metrics where every per-class IoU of a class absent from its validation labels
    is None (per_class_iou by id, per_class_iou_by_name by name); unchanged when the labels are unknown."""
    metrics = dict(version.metrics or {})
    present = validation_classes(session, version)
    if present is None:
        return metrics
    names = {int(c["id"]): str(c["name"]) for c in classes}
    by_id = metrics.get("per_class_iou")
    if isinstance(by_id, dict):
        metrics["per_class_iou"] = {k: (v if _is_id(k) and int(k) in present else None) for k, v in by_id.items()}
    by_name = metrics.get("per_class_iou_by_name")
    if isinstance(by_name, dict):
        present_names = {names.get(c, str(c)) for c in present}
        metrics["per_class_iou_by_name"] = {k: (v if k in present_names else None) for k, v in by_name.items()}
    return metrics


def _is_id(key: object) -> bool:
    return isinstance(key, int) or (isinstance(key, str) and key.isdigit())
