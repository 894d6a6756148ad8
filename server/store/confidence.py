"""The model's confidence about an image: per image, the mean top class probability of the newest model mask
(what the queue and the image list show; null when no model has predicted the image), and per pixel, the 8-bit
map stored beside a model mask version (what the annotation view shades). No commit here."""

from __future__ import annotations

import io
from collections.abc import Iterable

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import MaskConfidence, MaskSource, MaskVersion
from server.store.errors import NotFound


def confidence_png(top_probability: np.ndarray) -> bytes:
    """H×W top class probabilities (0..1) → an 8-bit greyscale PNG of round(p × 255)."""
    levels = np.round(np.clip(top_probability, 0.0, 1.0) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(levels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def add_confidence_map(session: Session, mask: MaskVersion, png: bytes) -> None:
    """Store `png` (confidence_png) as the per-pixel confidence of the model mask version `mask`."""
    if mask.source != MaskSource.model:
        raise ValueError(
            f"mask version {mask.id} is a {mask.source.value} mask; only model masks have a confidence map"
        )
    session.add(MaskConfidence(mask_version_id=mask.id, png=png))
    session.flush()


def confidence_map_png(session: Session, mask: MaskVersion) -> bytes:
    """The stored confidence PNG of `mask`; NotFound when it has none (a human or SAM mask, or an older model one)."""
    png = session.scalar(select(MaskConfidence.png).where(MaskConfidence.mask_version_id == mask.id))
    if png is None:
        raise NotFound("confidence map of mask version", mask.version, within=f"image {mask.image_id}")
    return png


def model_confidences(session: Session, image_ids: Iterable[int]) -> dict[int, float]:
    """Image id → the mean confidence of its newest model mask that has one; images without one are left out."""
    ids = list(image_ids)
    if not ids:
        return {}
    scored = (MaskVersion.source == MaskSource.model) & MaskVersion.confidence.is_not(None)
    newest = (
        select(MaskVersion.image_id, func.max(MaskVersion.version).label("version"))
        .where(MaskVersion.image_id.in_(ids), scored)
        .group_by(MaskVersion.image_id)
        .subquery()
    )
    rows = session.execute(
        select(MaskVersion.image_id, MaskVersion.confidence).join(
            newest, (newest.c.image_id == MaskVersion.image_id) & (newest.c.version == MaskVersion.version)
        )
    ).all()
    return {image_id: float(confidence) for image_id, confidence in rows}


def model_confidence(session: Session, image_id: int) -> float | None:
    return model_confidences(session, [image_id]).get(image_id)
