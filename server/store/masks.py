"""Mask versions: append-only, each naming the version it started from. A stale base is a conflict,
never a silent overwrite; a human version marks its image labeled and ends its claim.

A mask is a single-channel PNG of class ids: mode L, or mode P whose palette *indices* are the ids.
RGB(A) masks are refused, even when every channel is equal: colour-coded masks are the commonest mistake,
and guessing ids from colours would store wrong labels without a word.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from server.models import Image, ImageStatus, MaskSource, MaskVersion, Project
from server.store.effort import pixel_agreement
from server.store.errors import Conflict, InvalidInput, NotFound, TooLarge
from server.store.limits import UploadLimits


@dataclass(frozen=True)
class CheckedMask:
    png: bytes  # re-encoded as mode L, whatever palette the upload had
    sha256: str
    class_ids: list[int]
    labeled_fraction: float
    ids: np.ndarray  # the class ids, H×W uint8


def check_mask_png(data: bytes, project: Project, width: int, height: int, limits: UploadLimits) -> CheckedMask:
    """The mask's class ids, or InvalidInput / TooLarge naming what is wrong with it."""
    if not data:
        raise InvalidInput("mask file is empty")
    if len(data) > limits.max_upload_bytes:
        raise TooLarge(limits.too_large("mask file"))
    try:
        picture = PILImage.open(io.BytesIO(data))
    except Exception as error:
        raise InvalidInput(limits.unreadable(error, "mask", "PNG")) from error
    if picture.format != "PNG":
        raise InvalidInput(f"mask must be a PNG, got {picture.format}")
    if picture.size != (width, height):
        raise InvalidInput(
            f"mask is {picture.size[0]}×{picture.size[1]}, the image is {width}×{height}: sizes must match exactly"
        )
    if picture.mode not in ("L", "P"):
        raise InvalidInput(
            f"mask must be a single-channel PNG of class ids (mode L, or P with the ids as palette indices), "
            f"got mode {picture.mode}"
        )
    try:
        picture.load()
        ids = np.asarray(picture, dtype=np.uint8)
    except Exception as error:
        raise InvalidInput(f"mask PNG is corrupt or truncated: {error}") from error
    present = [int(v) for v in np.unique(ids)]
    allowed = {int(c["id"]) for c in project.classes}
    unknown = [v for v in present if v not in allowed and v != project.ignore_index]
    if unknown:
        raise InvalidInput(
            f"mask uses class ids {unknown} that project {project.id} does not have "
            f"(classes {min(allowed)}..{max(allowed)}, ignore index {project.ignore_index})"
        )
    buffer = io.BytesIO()
    PILImage.fromarray(ids, "L").save(buffer, format="PNG")
    png = buffer.getvalue()
    return CheckedMask(
        png=png,
        sha256=hashlib.sha256(png).hexdigest(),
        class_ids=[v for v in present if v != project.ignore_index],
        labeled_fraction=float(np.mean(ids != project.ignore_index)),
        ids=ids,
    )


def latest_mask_version(session: Session, image_id: int) -> MaskVersion | None:
    return session.scalar(
        select(MaskVersion).where(MaskVersion.image_id == image_id).order_by(MaskVersion.version.desc()).limit(1)
    )


def get_mask_version(session: Session, image: Image, version: int | None = None) -> MaskVersion:
    """The given version of the image's mask, or its newest when version is None."""
    if version is None:
        found = latest_mask_version(session, image.id)
        if found is None:
            raise NotFound("mask of image", image.id)
        return found
    found = session.scalar(select(MaskVersion).where(MaskVersion.image_id == image.id, MaskVersion.version == version))
    if found is None:
        raise NotFound("mask version", version, within=f"image {image.id}")
    return found


def mask_history(session: Session, image_id: int) -> list[MaskVersion]:
    """Every version, oldest first, without loading their PNGs."""
    return list(
        session.scalars(
            select(MaskVersion)
            .options(defer(MaskVersion.png))
            .where(MaskVersion.image_id == image_id)
            .order_by(MaskVersion.version)
        )
    )


def _agreement_with(base: MaskVersion | None, ids: np.ndarray, ignore_index: int) -> float | None:
    if base is None:
        return None
    base_ids = np.asarray(PILImage.open(io.BytesIO(base.png)), dtype=np.uint8)
    return pixel_agreement(base_ids, ids, ignore_index)


def add_mask_version(
    session: Session,
    image: Image,
    png: bytes,
    *,
    source: MaskSource,
    base_version: int | None,
    author_id: int | None = None,
    model_version_id: int | None = None,
    confidence: float | None = None,
    limits: UploadLimits | None = None,
    effort: dict[str, Any] | None = None,
) -> MaskVersion:
    """Store a new version on top of `base_version` (None for the first). Conflict when another version
    was saved since; InvalidInput / TooLarge for a bad PNG. `effort`: what the web app counted for this save
    (validated by the caller). The version's agreement with its base is computed and stored. Does not commit."""
    project = session.get(Project, image.project_id)
    assert project is not None
    checked = check_mask_png(png, project, image.width, image.height, limits or UploadLimits.from_settings())
    latest = latest_mask_version(session, image.id)
    latest_number = latest.version if latest else None
    if latest_number != base_version:
        started = "no mask" if base_version is None else f"version {base_version}"
        now = "has no mask" if latest_number is None else f"is at mask version {latest_number}"
        raise Conflict(
            f"stale base_version: image {image.id} {now}, this save started from {started}; reload and redo it"
        )
    if source == MaskSource.model and image.status == ImageStatus.labeled:
        raise Conflict(f"image {image.id} has a human label; a model mask never replaces it")
    version = MaskVersion(
        image_id=image.id,
        version=(latest_number or 0) + 1,
        parent_id=latest.id if latest else None,
        source=source,
        author_id=author_id,
        model_version_id=model_version_id,
        png=checked.png,
        sha256=checked.sha256,
        class_ids=checked.class_ids,
        labeled_fraction=checked.labeled_fraction,
        confidence=confidence,
        effort=effort,
        base_agreement=_agreement_with(latest, checked.ids, project.ignore_index),
    )
    try:
        with session.begin_nested():
            session.add(version)
            session.flush()
    except IntegrityError as error:  # another save of the same base got there first
        raise Conflict(
            f"stale base_version: image {image.id} got mask version {version.version} from another save meanwhile"
        ) from error
    if source == MaskSource.human:
        image.status = ImageStatus.labeled
        image.claimed_by = None
        image.claim_expires_at = None
        session.flush()
    return version
