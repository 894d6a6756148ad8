"""Labels for REST clients on real PostgreSQL: the manifest, one label as png / color / rle, ETags, and every
export format read back pixel for pixel against the stored masks. Human labels must win over model labels."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from pycocotools import mask as coco_mask
from sqlalchemy.orm import Session

from server.app import create_app
from server.db import session_scope
from server.label_export import ExportOptions, ExportProject, export_zip
from server.label_formats import S5MARS_CLASS_NAMES, class_palette
from server.label_schemas import ExportFormat
from server.models import Image, MaskSource, ModelVersion, Project, Role, Split
from server.schema import upgrade_to_head
from server.settings import Settings
from server.store.images import add_image
from server.store.labels import LabelSource
from server.store.limits import UploadLimits
from server.store.masks import add_mask_version
from server.store.users import create_user
from tests.factories import image_bytes, make_project, png_bytes

LIMITS = UploadLimits(max_upload_bytes=10_000_000, max_image_pixels=10_000_000)
WIDTH, HEIGHT = 20, 12  # not square: a transposed RLE or array would show
COLORS = [[10 * i + 5, 200 - 10 * i, 7 * i] for i in range(len(S5MARS_CLASS_NAMES))]
S5MARS_CLASSES = [{"id": i, "name": name, "color": COLORS[i]} for i, name in enumerate(S5MARS_CLASS_NAMES)]


def random_mask(seed: int, classes: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.array(classes, np.uint8), size=(HEIGHT, WIDTH))
    ids[rng.random((HEIGHT, WIDTH)) < 0.2] = 255
    return ids


def read_png(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)))


@dataclass
class Expected:
    image_id: int
    file_name: str
    split: str
    ids: np.ndarray
    source: str  # human | model
    mask_source: str
    mask_version: int
    model_version_id: int | None = None
    confidence: float | None = None


@dataclass
class Scene:
    project_id: int
    model_versions: list[int]
    labeled: dict[str, Expected] = field(default_factory=dict)  # by role in the scene
    unlabeled_id: int = 0


def _image(session: Session, project: Project, name: str, seed: int, split: Split = Split.pool, fmt: str = "PNG"):  # type: ignore[no-untyped-def]
    result = add_image(
        session, project, name, image_bytes(WIDTH, HEIGHT, fmt=fmt, seed=seed), split=split, limits=LIMITS
    )
    assert result.status == "stored", result
    image = session.get(Image, result.image_id)
    assert image is not None
    return image


def _mask(session: Session, image: Image, ids: np.ndarray, source: MaskSource, base: int | None, **kwargs):  # type: ignore[no-untyped-def]
    return add_mask_version(session, image, png_bytes(ids), source=source, base_version=base, limits=LIMITS, **kwargs)


@pytest.fixture
def scene(session: Session) -> Scene:
    """Five images: human-labeled, model-labeled by two model versions (the newer wins), model then human
    (human wins), SAM then model in val (the SAM mask counts as human and wins), and one with no label. Two
    share a file-name stem."""
    project = make_project(session, "gale", S5MARS_CLASSES)
    versions = []
    for labeled_count in (3, 5):
        version = ModelVersion(
            project_id=project.id,
            method="cps-mars",
            config={},
            metrics={},
            labeled_count=labeled_count,
            artifact_path=f"artifacts/{labeled_count}.pt",
            artifact_sha256="0" * 64,
        )
        session.add(version)
        versions.append(version)
    session.flush()
    first, second = versions
    found = Scene(project_id=project.id, model_versions=[first.id, second.id])

    human = _image(session, project, "scene.png", seed=1)
    ids = random_mask(1, (0, 1, 4))
    _mask(session, human, ids, MaskSource.human, None)
    found.labeled["human"] = Expected(human.id, "scene.png", "pool", ids, "human", "human", 1)

    model = _image(session, project, "scene.jpg", seed=2, fmt="JPEG")  # same stem as the first
    _mask(session, model, random_mask(20, (2, 3)), MaskSource.model, None, model_version_id=first.id, confidence=0.5)
    ids = random_mask(2, (2, 3, 8))
    _mask(session, model, ids, MaskSource.model, 1, model_version_id=second.id, confidence=0.75)
    found.labeled["model"] = Expected(model.id, "scene.jpg", "pool", ids, "model", "model", 2, second.id, 0.75)

    both = _image(session, project, "both.png", seed=3)
    _mask(session, both, random_mask(30, (5,)), MaskSource.model, None, model_version_id=first.id, confidence=0.9)
    ids = random_mask(3, (0, 5, 6, 7))
    _mask(session, both, ids, MaskSource.human, 1)
    found.labeled["both"] = Expected(both.id, "both.png", "pool", ids, "human", "human", 2)

    sam = _image(session, project, "sam.png", seed=4, split=Split.val)
    ids = random_mask(4, (1, 2))
    _mask(session, sam, ids, MaskSource.sam, None)
    # A SAM mask leaves the image unlabeled, so a model mask may come after it; the SAM mask still wins.
    _mask(session, sam, random_mask(40, (4,)), MaskSource.model, 1, model_version_id=second.id, confidence=0.6)
    found.labeled["sam"] = Expected(sam.id, "sam.png", "val", ids, "human", "sam", 1)

    found.unlabeled_id = _image(session, project, "none.png", seed=5).id
    session.commit()
    return found


def label_url(scene: Scene, image_id: int, label_format: str | None = None) -> str:
    query = f"?format={label_format}" if label_format else ""
    return f"/api/v1/projects/{scene.project_id}/images/{image_id}/label{query}"


def from_rles(masks: list[dict], size: tuple[int, int], ignore: int = 255) -> np.ndarray:
    """A class-id array rebuilt from per-class RLEs with pycocotools; fails where two entries overlap."""
    ids = np.full(size, ignore, np.uint8)
    for entry in masks:
        plane = coco_mask.decode({"size": list(entry["size"]), "counts": entry["counts"].encode()}).astype(bool)
        assert not (plane & (ids != ignore)).any(), "two classes claim one pixel"
        ids[plane] = entry["class_id"]
    return ids


# ------------------------------------------------------------------------------------------- one label


def test_each_format_reads_back_the_effective_label(client: TestClient, headers: dict, scene: Scene) -> None:
    palette = class_palette(S5MARS_CLASSES)
    for role, expected in scene.labeled.items():
        png = client.get(label_url(scene, expected.image_id), headers=headers[Role.client])
        assert png.status_code == 200, (role, png.text)
        assert png.headers["content-type"] == "image/png"
        np.testing.assert_array_equal(read_png(png.content), expected.ids, err_msg=role)
        assert png.headers["x-label-source"] == expected.source, role
        assert png.headers["x-mask-source"] == expected.mask_source, role
        assert png.headers["x-mask-version"] == str(expected.mask_version), role
        assert png.headers.get("x-model-version") == (
            str(expected.model_version_id) if expected.model_version_id else None
        )

        color = client.get(label_url(scene, expected.image_id, "color"), headers=headers[Role.client])
        assert color.status_code == 200 and color.headers["content-type"] == "image/png"
        rgb = read_png(color.content)
        assert rgb.shape == (HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(rgb, palette[expected.ids], err_msg=role)
        assert (rgb[expected.ids == 255] == 0).all(), "ignore must be black"

        rle = client.get(label_url(scene, expected.image_id, "rle"), headers=headers[Role.client])
        assert rle.status_code == 200 and rle.headers["content-type"] == "application/json"
        body = rle.json()
        assert (body["source"], body["mask_source"], body["mask_version"]) == (
            expected.source,
            expected.mask_source,
            expected.mask_version,
        )
        assert (body["model_version_id"], body["confidence"]) == (expected.model_version_id, expected.confidence)
        assert body["size"] == [HEIGHT, WIDTH]
        present = sorted(int(v) for v in np.unique(expected.ids) if v != 255)
        assert [m["class_id"] for m in body["masks"]] == present
        for entry in body["masks"]:
            assert entry["category_id"] == entry["class_id"] + 1
            assert entry["name"] == S5MARS_CLASS_NAMES[entry["class_id"]]
            assert entry["area"] == int((expected.ids == entry["class_id"]).sum())
        np.testing.assert_array_equal(from_rles(body["masks"], (HEIGHT, WIDTH)), expected.ids, err_msg=role)

    model = client.get(label_url(scene, scene.labeled["model"].image_id), headers=headers[Role.client])
    assert float(model.headers["x-label-confidence"]) == pytest.approx(0.75)


def test_etag_answers_304_and_changes_with_the_label(
    client: TestClient, headers: dict, scene: Scene, session: Session
) -> None:
    expected = scene.labeled["human"]
    auth = headers[Role.client]
    tags = {}
    for label_format in ("png", "color", "rle"):
        first = client.get(label_url(scene, expected.image_id, label_format), headers=auth)
        tag = first.headers["etag"]
        assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
        tags[label_format] = tag
        again = client.get(label_url(scene, expected.image_id, label_format), headers={**auth, "If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
        listed = client.get(
            label_url(scene, expected.image_id, label_format), headers={**auth, "If-None-Match": f'"other", W/{tag}'}
        )
        assert listed.status_code == 304
    assert len(set(tags.values())) == 3, "each format needs its own ETag"
    stale = client.get(label_url(scene, expected.image_id), headers={**auth, "If-None-Match": '"not-it"'})
    assert stale.status_code == 200 and stale.content

    image = session.get(Image, expected.image_id)
    assert image is not None
    _mask(session, image, random_mask(99, (3,)), MaskSource.human, 1)
    session.commit()
    changed = client.get(label_url(scene, expected.image_id), headers={**auth, "If-None-Match": tags["png"]})
    assert changed.status_code == 200 and changed.headers["etag"] != tags["png"]
    assert changed.headers["x-mask-version"] == "2"
    np.testing.assert_array_equal(read_png(changed.content), random_mask(99, (3,)))


def test_missing_label_and_bad_format(client: TestClient, headers: dict, scene: Scene) -> None:
    auth = headers[Role.client]
    none = client.get(label_url(scene, scene.unlabeled_id), headers=auth)
    assert none.status_code == 404
    assert none.json()["detail"].startswith(f"label of image {scene.unlabeled_id} not found")
    unknown = client.get(label_url(scene, scene.labeled["human"].image_id, "jpeg"), headers=auth)
    assert unknown.status_code == 422 and "format" in unknown.json()["detail"]
    elsewhere = client.get(f"/api/v1/projects/{scene.project_id + 1}/images/{scene.unlabeled_id}/label", headers=auth)
    assert elsewhere.status_code == 404


# --------------------------------------------------------------------------------------------- manifest


def manifest(client: TestClient, scene: Scene, auth: dict, **params: object) -> dict:
    answer = client.get(f"/api/v1/projects/{scene.project_id}/labels", params=params, headers=auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_manifest_rows_filters_and_pages(client: TestClient, headers: dict, scene: Scene) -> None:
    auth = headers[Role.client]
    every = manifest(client, scene, auth)
    order = ["human", "model", "both", "sam"]  # import order; the unlabeled image is not listed
    assert every["total"] == 4
    assert [row["image_id"] for row in every["items"]] == [scene.labeled[r].image_id for r in order]
    for row, role in zip(every["items"], order, strict=True):
        expected = scene.labeled[role]
        assert row["file_name"] == expected.file_name and row["split"] == expected.split
        assert (row["source"], row["mask_source"], row["mask_version"]) == (
            expected.source,
            expected.mask_source,
            expected.mask_version,
        )
        assert (row["model_version_id"], row["confidence"]) == (expected.model_version_id, expected.confidence)
        assert row["labeled_fraction"] == pytest.approx(float(np.mean(expected.ids != 255)))
        png = client.get(label_url(scene, expected.image_id), headers=auth)
        assert png.headers["etag"] == f'"{row["sha256"]}.png"'
        assert row["created_at"].endswith(("Z", "+00:00"))

    def ids(**params: object) -> list[int]:
        return [row["image_id"] for row in manifest(client, scene, auth, **params)["items"]]

    assert ids(source="model") == [scene.labeled["model"].image_id]
    assert ids(source="human") == [scene.labeled[r].image_id for r in ("human", "both", "sam")]
    assert ids(model_version=scene.model_versions[1]) == [scene.labeled["model"].image_id]
    assert ids(model_version=scene.model_versions[0]) == []  # its masks were all superseded
    assert ids(split="val") == [scene.labeled["sam"].image_id]
    assert ids(split="test") == []

    first = manifest(client, scene, auth, limit=3, offset=0)
    rest = manifest(client, scene, auth, limit=3, offset=3)
    assert (first["total"], rest["total"], len(first["items"]), len(rest["items"])) == (4, 4, 3, 1)
    assert [r["image_id"] for r in first["items"] + rest["items"]] == [scene.labeled[r].image_id for r in order]

    missing = client.get(f"/api/v1/projects/{scene.project_id}/labels?model_version=999999", headers=auth)
    assert missing.status_code == 404 and "model version 999999" in missing.json()["detail"]
    bad = client.get(f"/api/v1/projects/{scene.project_id}/labels?source=robot", headers=auth)
    assert bad.status_code == 422 and "source" in bad.json()["detail"]
    assert client.get("/api/v1/projects/999999/labels", headers=auth).status_code == 404


# ---------------------------------------------------------------------------------------------- export


def export(client: TestClient, scene: Scene, auth: dict, **params: object) -> zipfile.ZipFile:
    with client.stream("GET", f"/api/v1/projects/{scene.project_id}/export", params=params, headers=auth) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"] == "application/zip"
        fmt = params.get("format", "project")
        assert f'filename="gale-{fmt}.zip"' in answer.headers["content-disposition"]
        data = answer.read()
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def names_by_image(scene: Scene) -> dict[str, str]:
    # Import order decides: the first "scene" keeps the stem, the second gets its image id added.
    return {
        "human": "scene",
        "model": f"scene__{scene.labeled['model'].image_id}",
        "both": "both",
        "sam": "sam",
    }


def test_project_export_matches_the_stored_masks(client: TestClient, headers: dict, scene: Scene) -> None:
    archive = export(client, scene, headers[Role.client], format="project", images="true")
    names = names_by_image(scene)
    listed = set(archive.namelist())
    for role, name in names.items():
        np.testing.assert_array_equal(read_png(archive.read(f"labels/{name}.png")), scene.labeled[role].ids)
    assert {n for n in listed if n.startswith("labels/")} == {f"labels/{n}.png" for n in names.values()}
    assert archive.read(f"images/{names['model']}.jpg")[:2] == b"\xff\xd8"
    assert archive.read("images/scene.png") == image_bytes(WIDTH, HEIGHT, seed=1)
    assert not any("none" in n for n in listed), "an image without a label is not exported"
    assert json.loads(archive.read("classes.json")) == {"ignore_index": 255, "classes": S5MARS_CLASSES}
    assert archive.read("splits/pool.txt").decode().split() == [names[r] for r in ("human", "model", "both")]
    assert archive.read("splits/val.txt").decode().split() == ["sam"]

    document = json.loads(archive.read("manifest.json"))
    assert document["count"] == 4 and document["counts"] == {"human": 3, "model": 1}
    by_name = {entry["name"]: entry for entry in document["labels"]}
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(archive.read("labels.csv").decode()))}
    for role, name in names.items():
        expected = scene.labeled[role]
        entry, row = by_name[name], rows[name]
        assert (entry["image_id"], entry["source"], entry["mask_version"]) == (
            expected.image_id,
            expected.source,
            expected.mask_version,
        )
        assert (entry["model_version_id"], entry["confidence"]) == (expected.model_version_id, expected.confidence)
        assert (row["source"], row["mask_source"], row["label"]) == (
            expected.source,
            expected.mask_source,
            f"labels/{name}.png",
        )
        assert row["model_version_id"] == (str(expected.model_version_id) if expected.model_version_id else "")

    plain = export(client, scene, headers[Role.client])
    assert not any(n.startswith("images/") for n in plain.namelist())


def test_s5mars_export_uses_raw_ids_and_reimports(
    client: TestClient, headers: dict, scene: Scene, tmp_path: Path
) -> None:
    archive = export(client, scene, headers[Role.client], format="s5mars", images="true")
    names = names_by_image(scene)
    for role, name in names.items():
        ids = scene.labeled[role].ids
        raw = read_png(archive.read(f"labels/{name}.png"))
        np.testing.assert_array_equal(raw[ids == 255], 0)
        np.testing.assert_array_equal(raw[ids != 255], ids[ids != 255].astype(np.int64) + 1)
    classes = json.loads(archive.read("s5mars_classes.json"))["classes"]
    assert [(c["raw_id"], c["train_id"], c["name"]) for c in classes] == [
        (i + 1, i, name) for i, name in enumerate(S5MARS_CLASS_NAMES)
    ]
    assert "classes.json" not in archive.namelist() and not any(n.startswith("splits/") for n in archive.namelist())
    assert archive.read("val.txt").decode().split() == ["sam"]

    # The repository's own reader takes the folder for the S5Mars release and gets the train ids back.
    from ml.data import detect_layout, open_dataset

    archive.extractall(tmp_path)
    assert detect_layout(tmp_path) == "s5mars"
    dataset = open_dataset(tmp_path)
    for role, name in names.items():
        np.testing.assert_array_equal(dataset.load_label(name), scene.labeled[role].ids)


def test_s5mars_export_refused_for_other_classes(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session, "jezero")  # the 4 default test classes
    answer = client.get(f"/api/v1/projects/{project.id}/export?format=s5mars", headers=headers[Role.client])
    assert answer.status_code == 409  # the request is valid; this project's classes are not S5Mars's
    assert "sky, ridge, soil" in answer.json()["detail"] and "soil, bedrock, sand, big rock" in answer.json()["detail"]
    assert (
        client.get(f"/api/v1/projects/{project.id}/export?format=voc", headers=headers[Role.client]).status_code == 422
    )
    assert client.get("/api/v1/projects/999999/export", headers=headers[Role.client]).status_code == 404


def test_coco_export_matches_the_stored_masks(client: TestClient, headers: dict, scene: Scene) -> None:
    archive = export(client, scene, headers[Role.client], format="coco", images="true")
    document = json.loads(archive.read("annotations.json"))
    assert [(c["id"], c["class_id"], c["name"]) for c in document["categories"]] == [
        (i + 1, i, name) for i, name in enumerate(S5MARS_CLASS_NAMES)
    ]
    names = names_by_image(scene)
    images = {image["id"]: image for image in document["images"]}
    assert set(images) == {expected.image_id for expected in scene.labeled.values()}
    annotation_ids = [a["id"] for a in document["annotations"]]
    assert len(set(annotation_ids)) == len(annotation_ids)
    for role, expected in scene.labeled.items():
        image = images[expected.image_id]
        assert (image["width"], image["height"], image["source"]) == (WIDTH, HEIGHT, expected.source)
        assert image["file_name"].rsplit(".", 1)[0] == names[role] and image["file_name"] in {
            n.removeprefix("images/") for n in archive.namelist()
        }
        mine = [a for a in document["annotations"] if a["image_id"] == expected.image_id]
        rebuilt = np.full((HEIGHT, WIDTH), 255, np.uint8)
        for annotation in mine:
            assert annotation["iscrowd"] == 0
            assert (annotation["source"], annotation["mask_version"], annotation["model_version_id"]) == (
                expected.source,
                expected.mask_version,
                expected.model_version_id,
            )
            rle = {"size": annotation["segmentation"]["size"], "counts": annotation["segmentation"]["counts"].encode()}
            plane = coco_mask.decode(rle).astype(bool)
            assert annotation["area"] == int(plane.sum())
            ys, xs = np.nonzero(plane)
            x, y, w, h = annotation["bbox"]
            assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert not (plane & (rebuilt != 255)).any()
            rebuilt[plane] = annotation["category_id"] - 1
        np.testing.assert_array_equal(rebuilt, expected.ids, err_msg=role)


def test_export_filters(client: TestClient, headers: dict, scene: Scene) -> None:
    auth = headers[Role.client]
    models = export(client, scene, auth, format="project", source="model")
    assert sorted(n for n in models.namelist() if n.startswith("labels/")) == [
        f"labels/scene__{scene.labeled['model'].image_id}.png"
    ]
    humans = json.loads(export(client, scene, auth, format="coco", source="human").read("annotations.json"))
    assert {image["id"] for image in humans["images"]} == {scene.labeled[r].image_id for r in ("human", "both", "sam")}
    assert {a["source"] for a in humans["annotations"]} == {"human"}
    val = export(client, scene, auth, format="s5mars", split="val")
    assert sorted(n for n in val.namelist() if n.startswith("labels/")) == ["labels/sam.png"]
    empty = export(client, scene, auth, format="project", split="test")
    assert json.loads(empty.read("manifest.json"))["count"] == 0


def test_export_is_streamed_in_pieces(db_url: str, scene: Scene) -> None:
    project = ExportProject(id=scene.project_id, name="gale", classes=S5MARS_CLASSES, ignore_index=255)
    options = ExportOptions(format=ExportFormat.project, include_images=True, source=LabelSource.all, split=None)
    pieces = list(export_zip(db_url, project, options, chunk_bytes=1))
    # Each label (with its image) went out as a piece of its own before the next one was read.
    labels = len(scene.labeled)
    assert len(pieces) > labels
    assert [piece.count(b"labels/") for piece in pieces[:labels]] == [1] * labels
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.testzip() is None and "manifest.json" in archive.namelist()


def test_every_role_may_read_labels_and_none_without_a_token(client: TestClient, headers: dict, scene: Scene) -> None:
    image_id = scene.labeled["model"].image_id
    urls = [
        f"/api/v1/projects/{scene.project_id}/labels",
        label_url(scene, image_id, "rle"),
        f"/api/v1/projects/{scene.project_id}/export?format=coco",
    ]
    for url in urls:
        for role in Role:
            assert client.get(url, headers=headers[role]).status_code == 200, (url, role)
        assert client.get(url).status_code == 401


def test_labels_and_export_on_the_embedded_sqlite_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    upgrade_to_head(settings.resolved_database_url)
    with session_scope(settings.resolved_database_url) as session:
        _user, token = create_user(session, "client", Role.client)
        project = make_project(session, "gale", S5MARS_CLASSES)
        image = _image(session, project, "a.png", seed=1)
        ids = random_mask(1, (0, 8))
        _mask(session, image, ids, MaskSource.sam, None)
        _mask(session, image, random_mask(2, (1,)), MaskSource.model, 1, confidence=0.5)
        project_id, image_id = project.id, image.id
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client:
        rows = client.get(f"/api/v1/projects/{project_id}/labels", headers=auth).json()["items"]
        assert [(r["image_id"], r["source"], r["mask_version"]) for r in rows] == [(image_id, "human", 1)]
        label = client.get(f"/api/v1/projects/{project_id}/images/{image_id}/label", headers=auth)
        np.testing.assert_array_equal(read_png(label.content), ids)
        answer = client.get(f"/api/v1/projects/{project_id}/export?format=s5mars", headers=auth)
        assert answer.status_code == 200
        raw = read_png(zipfile.ZipFile(io.BytesIO(answer.content)).read("labels/a.png"))
        np.testing.assert_array_equal(raw, np.where(ids == 255, 0, ids.astype(np.int64) + 1))
