"""Images: validate and store uploaded bytes (the same function for uploads and imports), list, read.

add_image decides each file on its own and never half-stores one: the row, its bytes and its optional label
go in one savepoint, or none of them does. Bad data is an answer (rejected, with the reason), not an error.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import Image, ImageBlob, ImageStatus, MaskSource, MaskVersion, Project, Split
from server.store.errors import NotFound, StoreError
from server.store.limits import UploadLimits
from server.store.masks import add_mask_version
from server.text import without_control

ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF"}
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff"}


@dataclass(frozen=True)
class AddImageResult:
    status: Literal["stored", "duplicate", "rejected"]
    reason: str | None = None
    image_id: int | None = None  # the new image, or the one it duplicates
    mask_version: int | None = None  # the label stored with it


@dataclass(frozen=True)
class CheckedImage:
    format: str
    width: int
    height: int


class RejectedImage(Exception):
    pass


def check_image_bytes(data: bytes, limits: UploadLimits) -> CheckedImage:
    """Format and size of an image that decodes completely; RejectedImage naming what is wrong otherwise."""
    if not data:
        raise RejectedImage("empty file")
    if len(data) > limits.max_upload_bytes:
        raise RejectedImage(limits.too_large("file"))
    try:
        picture = PILImage.open(io.BytesIO(data))
    except Exception as error:
        raise RejectedImage(limits.unreadable(error, "file", "PNG, JPEG or TIFF")) from error
    image_format = ACCEPTED_FORMATS.get(picture.format or "")
    if image_format is None:
        raise RejectedImage(f"unsupported format {picture.format}; accepted: PNG, JPEG, TIFF")
    width, height = picture.size
    # Checked from the header, before decoding: a small file may unpack into gigabytes.
    if width * height > limits.max_image_pixels:
        raise RejectedImage(limits.too_many_pixels(width * height, (width, height)))
    if width == 0 or height == 0:
        raise RejectedImage(f"image has no pixels ({width}×{height})")
    try:
        picture.load()  # a truncated or corrupt file fails here, not in the header
    except Exception as error:
        raise RejectedImage(f"corrupt or truncated {image_format}: {error}") from error
    return CheckedImage(format=image_format, width=width, height=height)


def add_image(
    session: Session,
    project: Project,
    file_name: str,
    data: bytes,
    *,
    split: Split = Split.pool,
    label_png: bytes | None = None,
    author_id: int | None = None,
    limits: UploadLimits | None = None,
) -> AddImageResult:
    """Validate and store one image (and its label, as human mask version 1). Never raises for bad data:
    returns rejected with the reason. Does not commit. `limits` default to get_settings()'s."""
    limits = limits or UploadLimits.from_settings()
    # An upload's file name is the client's text: its control characters are dropped rather than refusing a good
    # image over its name.
    file_name = without_control(file_name).strip() or "unnamed"
    try:
        checked = check_image_bytes(data, limits)
    except RejectedImage as rejected:
        return AddImageResult("rejected", reason=str(rejected))
    sha256 = hashlib.sha256(data).hexdigest()
    existing = session.scalar(select(Image.id).where(Image.project_id == project.id, Image.sha256 == sha256))
    if existing is not None:
        return AddImageResult("duplicate", reason=f"same bytes as image {existing}", image_id=existing)
    next_order = (session.scalar(select(func.max(Image.import_order)).where(Image.project_id == project.id)) or 0) + 1
    image = Image(
        project_id=project.id,
        file_name=file_name[:500],
        sha256=sha256,
        width=checked.width,
        height=checked.height,
        format=checked.format,
        byte_size=len(data),
        split=Split(split),
        status=ImageStatus.unlabeled,
        import_order=next_order,
    )
    try:
        with session.begin_nested():
            session.add(image)
            session.flush()
            session.add(ImageBlob(image_id=image.id, data=data))
            mask_version = None
            if label_png is not None:
                mask = add_mask_version(
                    session,
                    image,
                    label_png,
                    source=MaskSource.human,
                    base_version=None,
                    author_id=author_id,
                    limits=limits,
                )
                mask_version = mask.version
            session.flush()
    except StoreError as error:  # the label is bad: the image goes too, so nothing is half-stored
        return AddImageResult("rejected", reason=f"label: {error.detail}")
    except IntegrityError:  # the same bytes stored by a concurrent request meanwhile
        existing = session.scalar(select(Image.id).where(Image.project_id == project.id, Image.sha256 == sha256))
        return AddImageResult("duplicate", reason=f"same bytes as image {existing}", image_id=existing)
    return AddImageResult("stored", image_id=image.id, mask_version=mask_version)


def get_image(session: Session, project_id: int, image_id: int) -> Image:
    """The image, if it belongs to the project; NotFound naming both otherwise."""
    image = session.get(Image, image_id)
    if image is None or image.project_id != project_id:
        raise NotFound("image", image_id, within=f"project {project_id}")
    return image


def image_bytes(session: Session, image: Image) -> bytes:
    blob = session.get(ImageBlob, image.id)
    if blob is None:
        raise NotFound("bytes of image", image.id)
    return blob.data


@dataclass(frozen=True)
class ImageListing:
    images: list[Image]
    latest_versions: dict[int, int]
    total: int


def list_images(
    session: Session,
    project_id: int,
    *,
    status: ImageStatus | None = None,
    split: Split | None = None,
    has_label: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> ImageListing:
    """Images in import order. has_label: whether any mask version (human, SAM or model) exists."""
    latest = (
        select(MaskVersion.image_id, func.max(MaskVersion.version).label("version"))
        .group_by(MaskVersion.image_id)
        .subquery()
    )
    query = select(Image, latest.c.version).outerjoin(latest, latest.c.image_id == Image.id)
    query = query.where(Image.project_id == project_id)
    if status is not None:
        query = query.where(Image.status == status)
    if split is not None:
        query = query.where(Image.split == split)
    if has_label is not None:
        query = query.where(latest.c.version.is_not(None) if has_label else latest.c.version.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Image.import_order, Image.id).limit(limit).offset(offset)).all()
    return ImageListing(
        images=[row[0] for row in rows],
        latest_versions={row[0].id: row[1] for row in rows if row[1] is not None},
        total=total,
    )


def _to_display(picture: PILImage.Image) -> PILImage.Image:
    if picture.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float rasters (common in rover TIFFs): stretch to 8 bits for viewing.
        values = np.asarray(picture, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
        return PILImage.fromarray(scaled.astype(np.uint8), "L")
    if picture.mode in ("RGB", "L", "RGBA"):
        return picture
    return picture.convert("RGBA" if "A" in picture.getbands() or picture.mode == "P" else "RGB")


def thumbnail_png(data: bytes, max_side: int) -> bytes:
    """A PNG no larger than max_side on either side, keeping the aspect ratio."""
    picture = PILImage.open(io.BytesIO(data))
    picture.draft("RGB", (max_side, max_side))  # JPEG decodes at a reduced scale: much faster
    picture = _to_display(picture)
    picture.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def cached_thumbnail_png(cache_dir: Path, sha256: str, max_side: int, load: Callable[[], bytes]) -> bytes:
    """thumbnail_png, kept on disk by content hash: stored bytes never change, so neither does a thumbnail."""
    path = cache_dir / sha256[:2] / f"{sha256}-{max_side}.png"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    png = thumbnail_png(load(), max_side)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_bytes(png)
        partial.replace(path)  # atomic: a concurrent reader sees the whole file or none
    except OSError:
        pass  # a cache that cannot be written only costs time
    return png
