"""Images: multipart upload with per-file answers, labels by name, listing with filters, bytes, thumbnails;
bad files rejected with the reason and nothing of them left in the database."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.models import Image, ImageBlob, ImageStatus, MaskVersion, Role
from server.settings import Settings
from tests.factories import image_bytes, make_project, mask_png


def images_url(project_id: int) -> str:
    return f"/api/v1/projects/{project_id}/images"


def counts(session: Session) -> tuple[int, int, int]:
    session.expire_all()
    return tuple(
        session.scalar(select(func.count()).select_from(table))  # type: ignore[misc]
        for table in (Image, ImageBlob, MaskVersion)
    )


def upload(client: TestClient, project_id: int, files: list[tuple[str, bytes]], headers: dict, **kwargs):  # type: ignore[no-untyped-def]
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    parts += [("labels", (name, data, "image/png")) for name, data in kwargs.pop("labels", [])]
    return client.post(images_url(project_id), files=parts, headers=headers, **kwargs)


def test_upload_many_formats_and_a_duplicate(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    files = [
        ("a.png", image_bytes(40, 30, seed=1)),
        ("b.jpg", image_bytes(40, 30, fmt="JPEG", seed=2)),
        ("c.tif", image_bytes(40, 30, fmt="TIFF", seed=3)),
        ("a-again.png", image_bytes(40, 30, seed=1)),
    ]
    answer = upload(client, project.id, files, headers[Role.lead])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [item["status"] for item in body["items"]] == ["stored", "stored", "stored", "duplicate"]
    assert (body["stored"], body["duplicate"], body["rejected"]) == (3, 1, 0)
    assert body["items"][3]["image_id"] == body["items"][0]["image_id"]
    assert counts(session) == (3, 3, 0)
    stored = session.scalars(select(Image).order_by(Image.import_order)).all()
    assert [(i.file_name, i.format, i.width, i.height) for i in stored] == [
        ("a.png", "PNG", 40, 30),
        ("b.jpg", "JPEG", 40, 30),
        ("c.tif", "TIFF", 40, 30),
    ]
    # the same file again in a later request is a duplicate too
    again = upload(client, project.id, [("x.png", image_bytes(40, 30, seed=2, fmt="JPEG"))], headers[Role.lead])
    assert again.json()["items"][0]["status"] == "duplicate"


def truncated_png() -> bytes:
    data = image_bytes(64, 64, seed=5)
    return data[: len(data) // 2]


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("P", (8, 8)).save(buffer, format="GIF")
    return buffer.getvalue()


def bmp_bytes() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buffer, format="BMP")
    return buffer.getvalue()


def corrupt_png() -> bytes:
    data = bytearray(image_bytes(64, 64, seed=6))
    data[len(data) // 2 : len(data) // 2 + 50] = b"\xff" * 50  # garbage inside the compressed pixel data
    return bytes(data)


def truncated_jpeg() -> bytes:
    data = image_bytes(64, 64, fmt="JPEG", seed=6)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.png", b"", "empty file"),
        ("notes.txt", b"these are not pixels\n" * 10, "not an image"),
        ("truncated.png", truncated_png(), "truncated"),
        ("truncated.jpg", truncated_jpeg(), "truncated"),
        ("corrupt.png", corrupt_png(), "corrupt or truncated PNG"),
        ("anim.gif", gif_bytes(), "unsupported format GIF"),
        ("old.bmp", bmp_bytes(), "unsupported format BMP"),
    ],
)
def test_bad_files_are_rejected_and_nothing_is_stored(
    client: TestClient, headers: dict, session: Session, name: str, data: bytes, reason: str
) -> None:
    project = make_project(session)
    answer = upload(client, project.id, [(name, data), ("good.png", image_bytes(seed=9))], headers[Role.lead])
    assert answer.status_code == 200
    bad, good = answer.json()["items"]
    assert bad["status"] == "rejected" and reason in bad["reason"], bad
    assert bad["image_id"] is None
    assert good["status"] == "stored"
    assert counts(session) == (1, 1, 0)


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG of width×height black pixels: a few kilobytes that would unpack to width×height bytes."""
    buffer = io.BytesIO()
    PILImage.new("L", (width, height)).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def test_decompression_bomb_is_rejected_before_decoding(settings: Settings, headers: dict, session: Session) -> None:
    project = make_project(session)
    small_limit = settings.model_copy(update={"max_image_pixels": 100_000})
    with TestClient(create_app(small_limit)) as client:
        bomb = bomb_png(1000, 1000)
        assert len(bomb) < 10_000
        answer = upload(client, project.id, [("bomb.png", bomb)], headers[Role.lead]).json()["items"][0]
    assert answer["status"] == "rejected"
    assert "decompression bomb" in answer["reason"] and "1000000 pixels" in answer["reason"]
    assert counts(session) == (0, 0, 0)


def test_pil_own_bomb_error_is_a_rejection_too(settings: Settings, headers: dict, session: Session) -> None:
    # Above 2 × PIL.Image.MAX_IMAGE_PIXELS, PIL itself refuses to open: that must be an answer, not a 500.
    project = make_project(session)
    huge = settings.model_copy(update={"max_image_pixels": 10**12})
    side = int((2 * PILImage.MAX_IMAGE_PIXELS) ** 0.5) + 100
    header = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0]))
    with TestClient(create_app(huge)) as client:
        item = upload(client, project.id, [("bomb.png", header + _png_chunk(b"IEND", b""))], headers[Role.lead])
    assert item.json()["items"][0]["status"] == "rejected"
    assert "decompression bomb" in item.json()["items"][0]["reason"]
    assert counts(session) == (0, 0, 0)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")


def test_file_over_the_upload_limit_is_rejected(settings: Settings, headers: dict, session: Session) -> None:
    project = make_project(session)
    data = image_bytes(64, 64, seed=3)
    with TestClient(create_app(settings.model_copy(update={"max_upload_bytes": len(data) - 1}))) as client:
        item = upload(client, project.id, [("big.png", data)], headers[Role.lead]).json()["items"][0]
    assert item["status"] == "rejected" and f"limit of {len(data) - 1} bytes" in item["reason"]
    assert counts(session) == (0, 0, 0)


def test_labels_in_the_same_request(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    files = [("a.jpg", image_bytes(32, 24, fmt="JPEG", seed=1)), ("b.png", image_bytes(32, 24, seed=2))]
    labels = [("a.png", mask_png(32, 24)), ("b.png", mask_png(32, 24, values=(2, 3))), ("zzz.png", mask_png())]
    body = upload(client, project.id, files, headers[Role.lead], labels=labels).json()
    assert [(i["status"], i["mask_version"]) for i in body["items"]] == [("stored", 1), ("stored", 1)]
    assert body["unmatched_labels"] == ["zzz.png"]
    session.expire_all()
    assert {i.status for i in session.scalars(select(Image))} == {ImageStatus.labeled}
    assert sorted(m.class_ids for m in session.scalars(select(MaskVersion))) == [[0, 1], [2, 3]]


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        (mask_png(31, 24), "sizes must match"),
        (mask_png(32, 24, values=(0, 9)), "class ids [9]"),
        (image_bytes(32, 24), "got mode RGB"),
        (b"not a png", "label: mask is not an image: expected PNG"),
    ],
)
def test_a_bad_label_rejects_its_image_too(
    client: TestClient, headers: dict, session: Session, label: bytes, reason: str
) -> None:
    project = make_project(session)
    item = upload(
        client, project.id, [("a.png", image_bytes(32, 24))], headers[Role.lead], labels=[("a.png", label)]
    ).json()["items"][0]
    assert item["status"] == "rejected"
    assert item["reason"].startswith("label: ") and reason in item["reason"], item
    assert counts(session) == (0, 0, 0)


def test_list_with_filters_and_pagination(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    files = [(f"{n}.png", image_bytes(16, 16, seed=n)) for n in range(5)]
    upload(client, project.id, files[:3], headers[Role.lead], labels=[("0.png", mask_png(16, 16))])
    upload(client, project.id, files[3:], headers[Role.lead], data={"split": "val"})
    url = images_url(project.id)
    page = client.get(url, params={"limit": 2, "offset": 1}, headers=headers[Role.client]).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [i["file_name"] for i in page["items"]] == ["1.png", "2.png"]

    def names(**params: object) -> list[str]:
        answer = client.get(url, params=params, headers=headers[Role.client])
        assert answer.status_code == 200, answer.text
        return [i["file_name"] for i in answer.json()["items"]]

    assert names(status="labeled") == ["0.png"]
    assert names(status="unlabeled", split="pool") == ["1.png", "2.png"]
    assert names(split="val") == ["3.png", "4.png"]
    assert names(has_label=True) == ["0.png"]
    assert names(has_label=False) == ["1.png", "2.png", "3.png", "4.png"]
    first = client.get(url, headers=headers[Role.client]).json()["items"][0]
    assert first["latest_mask_version"] == 1 and first["status"] == "labeled"
    assert client.get(url, params={"status": "nonsense"}, headers=headers[Role.client]).status_code == 422
    assert client.get(url, params={"limit": 0}, headers=headers[Role.client]).status_code == 422


def test_original_bytes_and_thumbnail(client: TestClient, headers: dict, session: Session, settings: Settings) -> None:
    project = make_project(session)
    original = image_bytes(400, 100, fmt="JPEG", seed=4)
    image_id = upload(client, project.id, [("wide.jpg", original)], headers[Role.lead]).json()["items"][0]["image_id"]
    base = f"{images_url(project.id)}/{image_id}"
    got = client.get(f"{base}/file", headers=headers[Role.client])
    assert got.status_code == 200 and got.content == original
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["cross-origin-embedder-policy"] == "require-corp"
    assert got.headers["cross-origin-opener-policy"] == "same-origin"

    thumb = client.get(f"{base}/thumbnail", params={"max_side": 64}, headers=headers[Role.client])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert PILImage.open(io.BytesIO(thumb.content)).size == (64, 16)
    assert "max-age" in thumb.headers["cache-control"]
    cached = client.get(
        f"{base}/thumbnail",
        params={"max_side": 64},
        headers={**headers[Role.client], "If-None-Match": thumb.headers["etag"]},
    )
    assert cached.status_code == 304
    again = client.get(f"{base}/thumbnail", params={"max_side": 64}, headers=headers[Role.client])
    assert again.content == thumb.content
    assert len(list((settings.data_dir / "thumbnails").rglob("*-64.png"))) == 1
    meta = client.get(base, headers=headers[Role.client]).json()
    assert (meta["width"], meta["height"], meta["latest_mask_version"]) == (400, 100, None)


def test_sixteen_bit_tiff_thumbnail(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    ramp = (np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 16).astype(np.uint16)
    buffer = io.BytesIO()
    PILImage.fromarray(ramp).save(buffer, format="TIFF")
    item = upload(client, project.id, [("deep.tif", buffer.getvalue())], headers[Role.lead]).json()["items"][0]
    assert item["status"] == "stored", item
    thumb = client.get(f"{images_url(project.id)}/{item['image_id']}/thumbnail", headers=headers[Role.client])
    assert thumb.status_code == 200
    pixels = np.asarray(PILImage.open(io.BytesIO(thumb.content)))
    assert pixels.min() == 0 and pixels.max() == 255


def test_unknown_ids_are_404_naming_them(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    other = make_project(session, name="gale")
    image_id = upload(client, other.id, [("a.png", image_bytes())], headers[Role.lead]).json()["items"][0]["image_id"]
    answer = client.get(f"{images_url(project.id)}/{image_id}", headers=headers[Role.client])
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"image {image_id} not found in project {project.id}"
    missing = client.get(images_url(999), headers=headers[Role.client])
    assert missing.status_code == 404 and missing.json()["detail"] == "project 999 not found"
    upload_missing = upload(client, 999, [("a.png", image_bytes())], headers[Role.lead])
    assert upload_missing.status_code == 404 and "project 999" in upload_missing.json()["detail"]
