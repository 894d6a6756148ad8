"""Annotation effort on real PostgreSQL: the effort the web app sends with a human save is validated (a 422 naming
the field, nothing stored), stored with the mask version, and given back in the history, the label manifest and
the exports' provenance; what was not sent stays null, never 0. Each version's agreement with its base is computed
on a known mask pair. GET /projects/{id}/metrics/effort groups real saves per round, from a pseudo-label or from
scratch. Migration 0008 upgrades and downgrades."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, inspect, pool, select, text
from sqlalchemy.orm import Session

from server.effort_schemas import ACTION_FIELDS
from server.models import Image, MaskSource, MaskVersion, ModelVersion, Project, Role, Round, RoundStatus, User
from server.schema import alembic_config, current_revision, upgrade_to_head
from server.store.images import add_image
from server.store.masks import add_mask_version
from tests.factories import image_bytes, make_project, png_bytes
from tests.integration.test_schema import schema_differences

WIDTH, HEIGHT = 8, 4
EFFORT_FIELDS = ("active_seconds", *ACTION_FIELDS)


def stored_image(session: Session, project: Project, seed: int) -> Image:
    result = add_image(session, project, f"{seed}.png", image_bytes(WIDTH, HEIGHT, seed=seed))
    assert result.status == "stored", result
    session.commit()
    image = session.get(Image, result.image_id)
    assert image is not None
    return image


def masks_url(image: Image) -> str:
    return f"/api/v1/projects/{image.project_id}/images/{image.id}/masks"


def save(
    client: TestClient, image: Image, ids: np.ndarray, auth: dict, *, effort: object = None, base: int | None = None
):  # type: ignore[no-untyped-def]
    data: dict[str, str] = {}
    if base is not None:
        data["base_version"] = str(base)
    if effort is not None:
        data["effort"] = effort if isinstance(effort, str) else json.dumps(effort)
    return client.post(
        masks_url(image), files={"mask": ("m.png", png_bytes(ids), "image/png")}, data=data, headers=auth
    )


def saved(client: TestClient, image: Image, ids: np.ndarray, auth: dict, **options: object) -> dict:
    answer = save(client, image, ids, auth, **options)  # type: ignore[arg-type]
    assert answer.status_code == 201, answer.text
    return answer.json()


def model_version(session: Session, project: Project) -> ModelVersion:
    version = ModelVersion(
        project_id=project.id,
        method="cps-mars",
        config={},
        metrics={},
        labeled_count=1,
        artifact_path="artifacts/m.pt",
        artifact_sha256="0" * 64,
    )
    session.add(version)
    session.commit()
    return version


def add_model_mask(session: Session, image: Image, ids: np.ndarray, version: ModelVersion) -> None:
    add_mask_version(
        session, image, png_bytes(ids), source=MaskSource.model, base_version=None, model_version_id=version.id
    )
    session.commit()


# Known pair. Base (a pseudo-label): rows 0-1 class 1, row 2 class 2, row 3 unlabelled: 24 labelled pixels.
# Saved: rows 0-1 kept (16 agree), row 2 left half relabelled 3 (4 disagree, 4 agree), row 3 left half labelled 0
# (4 labelled only in the saved mask: disagree). Labelled in either: 28; the same in both: 20 → 20 / 28.
BASE = np.array([[1] * 8, [1] * 8, [2] * 8, [255] * 8], np.uint8)
SAVED = np.array([[1] * 8, [1] * 8, [3] * 4 + [2] * 4, [0] * 4 + [255] * 4], np.uint8)
KNOWN_AGREEMENT = 20 / 28


def test_effort_is_stored_and_returned_and_absent_fields_stay_null(
    client: TestClient, headers: dict, session: Session
) -> None:
    project = make_project(session)
    image = stored_image(session, project, 1)
    effort = {"active_seconds": 42.5, "sam_positive_clicks": 3, "sam_negative_clicks": 1, "brush_strokes": 0}
    first = save(client, image, BASE, headers[Role.annotator], effort=effort)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["base_agreement"] is None  # no base version
    assert answer["effort"] == {name: effort.get(name) for name in EFFORT_FIELDS}  # brush 0 is 0, the rest null
    assert answer["effort"]["fills"] is None and answer["effort"]["brush_strokes"] == 0

    no_effort = save(client, image, SAVED, headers[Role.annotator], base=1)  # an API client that counts nothing
    assert no_effort.status_code == 201, no_effort.text
    assert no_effort.json()["effort"] is None
    assert no_effort.json()["base_agreement"] == pytest.approx(KNOWN_AGREEMENT)
    empty = save(client, image, SAVED, headers[Role.annotator], effort="", base=2)  # an empty field: not sent
    assert empty.status_code == 201 and empty.json()["effort"] is None
    assert empty.json()["base_agreement"] == 1.0  # saved unchanged

    history = client.get(masks_url(image), headers=headers[Role.client]).json()
    assert [h["effort"] for h in history] == [answer["effort"], None, None]
    assert [h["base_agreement"] for h in history] == [None, pytest.approx(KNOWN_AGREEMENT), 1.0]
    session.expire_all()
    stored = session.scalars(select(MaskVersion).order_by(MaskVersion.version)).all()
    assert stored[0].effort == effort  # only what was sent
    assert [m.effort for m in stored[1:]] == [None, None]
    # SQL NULL, not a JSON null: the dashboard's "effort recorded" filter depends on it.
    assert session.scalar(select(func.count()).select_from(MaskVersion).where(MaskVersion.effort.is_(None))) == 2


def test_agreement_with_a_pseudo_label_on_a_known_pair(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    image = stored_image(session, project, 2)
    add_model_mask(session, image, BASE, model_version(session, project))
    saved = save(client, image, SAVED, headers[Role.annotator], effort={"active_seconds": 5, "fills": 1}, base=1)
    assert saved.status_code == 201, saved.text
    assert saved.json()["base_agreement"] == pytest.approx(KNOWN_AGREEMENT)
    assert saved.json()["parent_version"] == 1


@pytest.mark.parametrize(
    ("effort", "field", "words"),
    [
        ({"brush_strokes": -1}, "brush_strokes", "greater than or equal to 0"),
        ({"active_seconds": -0.5}, "active_seconds", "greater than or equal to 0"),
        ({"active_seconds": 86_401}, "active_seconds", "less than or equal to 86400"),
        ({"sam_positive_clicks": 100_001}, "sam_positive_clicks", "less than or equal to 100000"),
        ({"undos": 1.5}, "undos", "valid integer"),
        ({"fills": "3"}, "fills", "string where the field takes integer"),
        ({"fills": True}, "fills", "boolean where the field takes integer"),
        ({"keystrokes": 4}, "keystrokes", "Extra inputs are not permitted"),
        ('{"active_seconds": NaN}', "active_seconds", "finite number"),
        ("[1, 2]", None, "object"),
        ("{not json", None, "not valid JSON"),
    ],
)
def test_bad_effort_is_a_422_naming_the_field_and_nothing_is_stored(
    client: TestClient, headers: dict, session: Session, effort: object, field: str | None, words: str
) -> None:
    image = stored_image(session, make_project(session), 3)
    answer = save(client, image, BASE, headers[Role.annotator], effort=effort)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    where = ["body", "effort"] + ([field] if field else [])
    assert [error["loc"] for error in body["errors"]] == [where]
    assert words in body["errors"][0]["msg"]
    assert ".".join(where) in body["detail"]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(MaskVersion)) == 0


def test_manifest_exports_and_review_queue_carry_effort(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    corrected, scratch = stored_image(session, project, 4), stored_image(session, project, 5)
    add_model_mask(session, corrected, BASE, model_version(session, project))
    effort = {"active_seconds": 30.0, "sam_positive_clicks": 2, "sam_commits": 1, "undos": 1}
    assert save(client, corrected, SAVED, headers[Role.annotator], effort=effort, base=1).status_code == 201
    assert save(client, scratch, BASE, headers[Role.annotator]).status_code == 201  # no effort sent

    manifest = client.get(f"/api/v1/projects/{project.id}/labels", headers=headers[Role.client]).json()
    items = {item["image_id"]: item for item in manifest["items"]}
    expected = {name: effort.get(name) for name in EFFORT_FIELDS}
    assert items[corrected.id]["effort"] == expected
    assert items[corrected.id]["base_agreement"] == pytest.approx(KNOWN_AGREEMENT)
    assert items[scratch.id]["effort"] is None and items[scratch.id]["base_agreement"] is None

    def export(export_format: str) -> zipfile.ZipFile:
        answer = client.get(
            f"/api/v1/projects/{project.id}/export", params={"format": export_format}, headers=headers[Role.client]
        )
        assert answer.status_code == 200, answer.text
        return zipfile.ZipFile(io.BytesIO(answer.content))

    archive = export("project")
    labels = {entry["image_id"]: entry for entry in json.loads(archive.read("manifest.json"))["labels"]}
    assert labels[corrected.id]["effort"] == expected
    assert labels[corrected.id]["base_agreement"] == pytest.approx(KNOWN_AGREEMENT)
    assert labels[scratch.id]["effort"] is None and labels[scratch.id]["base_agreement"] is None
    rows = {int(row["image_id"]): row for row in csv.DictReader(io.StringIO(archive.read("labels.csv").decode()))}
    assert (rows[corrected.id]["effort_active_seconds"], rows[corrected.id]["effort_actions"]) == ("30.0", "4")
    assert float(rows[corrected.id]["base_agreement"]) == pytest.approx(KNOWN_AGREEMENT)
    assert (rows[scratch.id]["effort_active_seconds"], rows[scratch.id]["effort_actions"]) == ("", "")

    queue = client.get(f"/api/v1/projects/{project.id}/reviews/queue", headers=headers[Role.lead]).json()
    assert {item["image"]["id"]: item["effort_seconds"] for item in queue["items"]} == {
        corrected.id: 30.0,
        scratch.id: None,
    }

    coco = json.loads(export("coco").read("annotations.json"))
    images = {entry["id"]: entry for entry in coco["images"]}
    assert images[corrected.id]["effort"] == expected and images[scratch.id]["effort"] is None
    assert all(a["effort"] == expected for a in coco["annotations"] if a["image_id"] == corrected.id)


def test_effort_per_round_from_a_pseudo_label_and_from_scratch(
    client: TestClient, headers: dict, session: Session
) -> None:
    project = make_project(session)
    seed_images = [stored_image(session, project, seed) for seed in (10, 11)]
    later = [stored_image(session, project, seed) for seed in (12, 13, 14, 15)]
    author = headers[Role.annotator]
    url = f"/api/v1/projects/{project.id}/metrics/effort"
    assert client.get(url, headers=headers[Role.client]).json() == {"project_id": project.id, "rounds": []}

    # Before any round: two seed labels from scratch (one saved twice: its two saves are one image's effort).
    saved(client, seed_images[0], BASE, author, effort={"active_seconds": 60, "brush_strokes": 4})
    saved(client, seed_images[0], SAVED, author, effort={"active_seconds": 20, "undos": 2}, base=1)
    saved(client, seed_images[1], BASE, author, effort={"active_seconds": 100, "fills": 10})

    # Round 1 finishes; its model's pseudo-labels are corrected, one image is labelled from scratch, one is saved by
    # an API client without effort (left out, not a 0).
    finished = Round(
        project_id=project.id,
        index=1,
        method="cps-mars",
        strategy="ueq",
        budget=2,
        status=RoundStatus.done,
        labeled_count=2,
        finished_at=datetime.now(UTC),  # after the seed labels, before the saves below
    )
    session.add(finished)
    session.commit()
    model = model_version(session, project)
    for image in later[:2]:
        add_model_mask(session, image, BASE, model)
    saved(client, later[0], SAVED, author, effort={"active_seconds": 10, "sam_commits": 1}, base=1)
    saved(client, later[1], BASE, author, effort={"active_seconds": 30, "sam_boxes": 2}, base=1)
    saved(client, later[2], BASE, author, effort={"active_seconds": 90, "sam_positive_clicks": 9})
    saved(client, later[3], BASE, author)

    answer = client.get(url, headers=headers[Role.client])
    assert answer.status_code == 200, answer.text
    rounds = answer.json()["rounds"]
    assert [r["after_round"] for r in rounds] == [0, 1]
    assert rounds[0]["labeled_count"] is None and rounds[1]["labeled_count"] == 2
    before, after = rounds
    assert before["from_scratch"] == {
        "images": 2,
        "median_active_seconds": 90.0,  # (60 + 20) and 100
        "median_actions": 8.0,  # (4 + 2) and 10
        "median_base_agreement": None,
    }
    assert before["from_pseudo_label"]["images"] == 0 and before["from_pseudo_label"]["median_actions"] is None
    assert after["from_pseudo_label"] == {
        "images": 2,
        "median_active_seconds": 20.0,  # 10 and 30
        "median_actions": 1.5,  # 1 and 2
        "median_base_agreement": pytest.approx((KNOWN_AGREEMENT + 1.0) / 2),
    }
    assert after["from_scratch"]["images"] == 1 and after["from_scratch"]["median_active_seconds"] == 90.0
    assert after["from_human_label"]["images"] == 0

    # The team panel's median time per image now has figures: the annotator's sessions 80, 100, 10, 30, 90.
    team = client.get(f"/api/v1/projects/{project.id}/team", headers=headers[Role.lead]).json()
    annotator = session.scalar(select(User).where(User.name == "annotator-user"))
    assert annotator is not None
    figures = {f["user_id"]: f for f in team["annotators"]}
    assert figures[annotator.id]["median_seconds_per_image"] == 80.0


def _columns(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return {column["name"] for column in inspect(engine).get_columns("mask_versions")}
    finally:
        engine.dispose()


def test_migration_0008_upgrades_and_downgrades_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'effort.sqlite3'}"
    upgrade_to_head(url)
    assert {"effort", "base_agreement"} <= _columns(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as connection:  # a row that must survive the round trip
        connection.execute(
            text(
                "INSERT INTO projects (id, name, description, classes, ignore_index, "
                "pseudo_label_threshold, review_percent, consensus_percent, consensus_threshold, "
                "created_at, updated_at) VALUES (1, 'p', '', '[]', 255, 0, 100, 0, 0.8, "
                "'2026-01-01', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO images (id, project_id, file_name, sha256, width, height, format, "
                "byte_size, split, status, import_order, created_at) VALUES (1, 1, 'a.png', 'x', 1, "
                "1, 'PNG', 1, 'pool', 'labeled', 0, '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO mask_versions (id, image_id, version, source, png, sha256, class_ids, "
                "labeled_fraction, effort, base_agreement, created_at) VALUES (1, 1, 1, 'human', "
                "x'00', 's', '[]', 1.0, '{\"fills\": 2}', 0.5, '2026-01-01')"
            )
        )
    engine.dispose()
    command.downgrade(alembic_config(url), "0007")
    assert current_revision(url) == "0007"
    assert not {"effort", "base_agreement"} & _columns(url)
    upgrade_to_head(url)
    assert {"effort", "base_agreement"} <= _columns(url)
    assert schema_differences(url) == []
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:  # the version is kept; what 0008 held is gone (NULL), as it was before
        assert connection.execute(text("SELECT id, effort, base_agreement FROM mask_versions")).all() == [
            (1, None, None)
        ]
    engine.dispose()


def test_migration_0008_upgrades_and_downgrades_on_postgresql(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "0007")
    try:
        assert current_revision(db_url) == "0007"
        assert not {"effort", "base_agreement"} & _columns(db_url)
    finally:
        upgrade_to_head(db_url)  # the session's database stays at head whatever happened
    assert {"effort", "base_agreement"} <= _columns(db_url)
    assert schema_differences(db_url) == []
