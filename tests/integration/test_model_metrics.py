"""Per-class IoU of a class absent from a model version's validation labels is null in the API (the dashboard
shows n/a), as the mIoU leaves such a class out; a class present keeps its IoU, 0.0 included. Read from the
model versions, a round's model version and the label-efficiency curve."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.demo import S5MARS_CLASSES
from server.models import MaskVersion, ModelVersion, Role, Round, RoundStatus
from tests.factories import add_synthetic_scenes, make_project

NAMES = {c["id"]: c["name"] for c in S5MARS_CLASSES}


def test_absent_classes_get_a_null_iou(client: TestClient, session: Session, headers) -> None:
    project = make_project(session, "absent", S5MARS_CLASSES)
    truth = add_synthetic_scenes(session, project, pool=3, labeled=1, val=2, size=48)
    val_ids = list(truth)[-2:]
    present = set()
    for class_ids in session.scalars(select(MaskVersion.class_ids).where(MaskVersion.image_id.in_(val_ids))):
        present |= set(class_ids)
    absent = sorted(set(NAMES) - present)
    assert present and absent  # synthetic scenes use six of the nine classes
    kept, missed, predicted_only = sorted(present)[0], sorted(present)[1], absent[0]
    per_class = {kept: 0.5, missed: 0.0, predicted_only: 0.0}  # as ml.metrics writes them
    row = Round(project_id=project.id, index=1, method="supervised", strategy="random", budget=1,
                status=RoundStatus.done, labeled_count=1)  # fmt: skip
    session.add(row)
    session.flush()
    session.add(
        ModelVersion(
            project_id=project.id,
            round_id=row.id,
            method="supervised",
            config={},
            metrics={
                "miou": 0.25,
                "per_class_iou": {str(k): v for k, v in per_class.items()},
                "per_class_iou_by_name": {NAMES[k]: v for k, v in per_class.items()},
                "validation": {"source": "val split", "images": 2, "image_ids": val_ids},
            },
            labeled_count=1,
            artifact_path="/nonexistent",
            artifact_sha256="0" * 64,
        )
    )
    session.commit()
    expected_by_name = {NAMES[kept]: 0.5, NAMES[missed]: 0.0, NAMES[predicted_only]: None}
    base = f"/api/v1/projects/{project.id}"

    (version,) = client.get(f"{base}/models", headers=headers[Role.lead]).json()
    assert version["metrics"]["per_class_iou_by_name"] == expected_by_name
    assert version["metrics"]["per_class_iou"] == {str(kept): 0.5, str(missed): 0.0, str(predicted_only): None}
    assert client.get(f"{base}/models/{version['id']}", headers=headers[Role.client]).json() == version
    (curve_point,) = client.get(f"{base}/metrics", headers=headers[Role.client]).json()["curve"]
    assert curve_point["per_class_iou"] == expected_by_name
    (listed,) = client.get(f"{base}/rounds", headers=headers[Role.annotator]).json()
    assert listed["model_version"]["metrics"]["per_class_iou_by_name"] == expected_by_name
