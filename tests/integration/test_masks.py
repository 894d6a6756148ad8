"""Mask versions: append-only saves on a named base (409 when stale), reads, history, validation."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.models import Image, ImageStatus, MaskVersion, Project, Role
from server.settings import Settings
from server.store.images import add_image
from server.store.limits import UploadLimits
from tests.factories import image_bytes, make_project, mask_png

LIMITS = UploadLimits(max_upload_bytes=10_000_000, max_image_pixels=10_000_000)


def stored_image(session: Session, project: Project, seed: int = 0, size: tuple[int, int] = (32, 24)) -> Image:
    result = add_image(session, project, f"{seed}.png", image_bytes(*size, seed=seed), limits=LIMITS)
    assert result.status == "stored"
    session.commit()
    image = session.get(Image, result.image_id)
    assert image is not None
    return image


def masks_url(image: Image) -> str:
    return f"/api/v1/projects/{image.project_id}/images/{image.id}/masks"


def save(client: TestClient, image: Image, png: bytes, headers: dict, base: int | None = None):  # type: ignore[no-untyped-def]
    data = {} if base is None else {"base_version": str(base)}
    return client.post(masks_url(image), files={"mask": ("m.png", png, "image/png")}, data=data, headers=headers)


def mask_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(MaskVersion)) or 0


def test_versions_append_with_parents_and_stale_base_is_409(
    client: TestClient, headers: dict, session: Session
) -> None:
    image = stored_image(session, make_project(session))
    first = save(client, image, mask_png(values=(0, 255)), headers[Role.annotator])
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["parent_version"], first.json()["source"]) == (1, None, "human")
    second = save(client, image, mask_png(values=(1, 2)), headers[Role.lead], base=1)
    assert second.status_code == 201 and second.json()["version"] == 2 and second.json()["parent_version"] == 1

    stale = save(client, image, mask_png(values=(3,)), headers[Role.annotator], base=1)
    assert stale.status_code == 409
    assert "stale base_version" in stale.json()["detail"] and "version 2" in stale.json()["detail"]
    first_again = save(client, image, mask_png(values=(3,)), headers[Role.annotator])
    assert first_again.status_code == 409
    assert mask_count(session) == 2

    history = client.get(masks_url(image), headers=headers[Role.client]).json()
    assert [(h["version"], h["parent_version"], h["class_ids"]) for h in history] == [(1, None, [0]), (2, 1, [1, 2])]
    assert history[0]["labeled_fraction"] == pytest.approx(0.5)
    latest = client.get(f"{masks_url(image)}/latest", headers=headers[Role.client])
    assert latest.status_code == 200 and latest.headers["x-mask-version"] == "2"
    assert latest.headers["content-type"] == "image/png"
    assert set(np.unique(np.asarray(PILImage.open(io.BytesIO(latest.content))))) == {1, 2}
    one = client.get(f"{masks_url(image)}/1", headers=headers[Role.client])
    assert one.status_code == 200 and set(np.unique(np.asarray(PILImage.open(io.BytesIO(one.content))))) == {0, 255}
    missing = client.get(f"{masks_url(image)}/7", headers=headers[Role.client])
    assert missing.status_code == 404 and missing.json()["detail"] == f"mask version 7 not found in image {image.id}"


def test_human_save_labels_the_image_and_ends_its_claim(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    image = stored_image(session, project)
    claimed = client.post(f"/api/v1/projects/{project.id}/queue/next", headers=headers[Role.annotator]).json()
    assert claimed["image"]["id"] == image.id
    assert save(client, image, mask_png(), headers[Role.annotator]).status_code == 201
    session.expire_all()
    fresh = session.get(Image, image.id)
    assert fresh is not None and fresh.status == ImageStatus.labeled and fresh.claimed_by is None


def test_palette_mask_is_read_by_its_indices(client: TestClient, headers: dict, session: Session) -> None:
    image = stored_image(session, make_project(session))
    answer = save(client, image, mask_png(values=(0, 3, 255), mode="P"), headers[Role.annotator])
    assert answer.status_code == 201, answer.text
    assert answer.json()["class_ids"] == [0, 3]
    stored = client.get(f"{masks_url(image)}/latest", headers=headers[Role.client])
    assert PILImage.open(io.BytesIO(stored.content)).mode == "L"


@pytest.mark.parametrize(
    ("png", "status", "detail"),
    [
        (mask_png(33, 24), 422, "mask is 33×24, the image is 32×24"),
        (mask_png(values=(0, 4, 200)), 422, "class ids [4, 200]"),
        (mask_png(mode="RGB"), 422, "got mode RGB"),
        (image_bytes(32, 24, fmt="JPEG"), 422, "mask must be a PNG, got JPEG"),
        (b"", 422, "mask file is empty"),
        (mask_png()[:60], 422, "mask"),
    ],
)
def test_bad_masks_are_refused_and_nothing_is_stored(
    client: TestClient, headers: dict, session: Session, png: bytes, status: int, detail: str
) -> None:
    image = stored_image(session, make_project(session))
    answer = save(client, image, png, headers[Role.annotator])
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]
    assert mask_count(session) == 0
    session.expire_all()
    assert session.get(Image, image.id).status == ImageStatus.unlabeled  # type: ignore[union-attr]


def test_mask_over_the_upload_limit_is_413(
    client: TestClient, headers: dict, session: Session, settings: Settings
) -> None:
    image = stored_image(session, make_project(session))
    png = mask_png()
    with TestClient(create_app(settings.model_copy(update={"max_upload_bytes": len(png) - 1}))) as small:
        answer = save(small, image, png, headers[Role.annotator])
    assert answer.status_code == 413 and "larger than the limit" in answer.json()["detail"]
    assert mask_count(session) == 0


def test_mask_for_another_projects_image_is_404(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    other_image = stored_image(session, make_project(session, name="gale"))
    url = f"/api/v1/projects/{project.id}/images/{other_image.id}/masks"
    answer = client.post(url, files={"mask": ("m.png", mask_png(), "image/png")}, headers=headers[Role.annotator])
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"image {other_image.id} not found in project {project.id}"
    assert mask_count(session) == 0
    no_mask = client.get(f"{masks_url(other_image)}/latest", headers=headers[Role.client])
    assert no_mask.status_code == 404 and no_mask.json()["detail"] == f"mask of image {other_image.id} not found"


def test_removing_a_used_class_is_409_and_an_unused_one_is_fine(
    client: TestClient, headers: dict, session: Session
) -> None:
    project = make_project(session)
    image = stored_image(session, project)
    assert save(client, image, mask_png(values=(0, 2)), headers[Role.annotator]).status_code == 201
    url = f"/api/v1/projects/{project.id}"
    classes = client.get(url, headers=headers[Role.lead]).json()["classes"]
    unused_removed = client.patch(url, json={"classes": classes[:3]}, headers=headers[Role.lead])
    assert unused_removed.status_code == 200, unused_removed.text
    used_removed = client.patch(url, json={"classes": classes[:2]}, headers=headers[Role.lead])
    assert used_removed.status_code == 409 and "[2]" in used_removed.json()["detail"]
    assert len(client.get(url, headers=headers[Role.lead]).json()["classes"]) == 3


def test_concurrent_saves_on_one_base_store_one_version(client: TestClient, headers: dict, session: Session) -> None:
    image = stored_image(session, make_project(session))
    statuses: list[int] = []
    start = threading.Barrier(8)

    def save_one(value: int) -> None:
        start.wait()
        statuses.append(save(client, image, mask_png(values=(value,)), headers[Role.annotator]).status_code)

    threads = [threading.Thread(target=save_one, args=(n % 4,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * 7
    assert mask_count(session) == 1
