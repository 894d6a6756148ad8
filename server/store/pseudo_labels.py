"""Which images a pseudo-label job touches: every image without a human label whose latest mask is not from the
model version yet, except those an annotator holds a live claim on (they are left for a later run, so a model
mask never lands under an annotator's open edit). No commit here: the caller owns its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from server.models import Image, ImageStatus, MaskVersion, utcnow


def claim_is_live(now: datetime):  # type: ignore[no-untyped-def]
    """SQL condition: someone holds the image's claim at `now`."""
    return and_(Image.claimed_by.is_not(None), Image.claim_expires_at > now)


def _pending(project_id: int, model_version_id: int) -> list:  # type: ignore[type-arg]
    already = exists().where(MaskVersion.image_id == Image.id, MaskVersion.model_version_id == model_version_id)
    return [Image.project_id == project_id, Image.status == ImageStatus.unlabeled, ~already]


def pseudo_label_targets(session: Session, project_id: int, model_version_id: int) -> list[int]:
    """Ids of the images the model version would label now (claimed ones included: checked again when written)."""
    return list(session.scalars(select(Image.id).where(*_pending(project_id, model_version_id)).order_by(Image.id)))


@dataclass(frozen=True)
class PseudoLabelCounts:
    images: int  # without a human label and without this model's mask yet
    claimed: int  # of those, held by an annotator now: skipped by a run started now


def pseudo_label_counts(session: Session, project_id: int, model_version_id: int) -> PseudoLabelCounts:
    pending = _pending(project_id, model_version_id)
    images = session.scalar(select(func.count()).select_from(Image).where(*pending)) or 0
    claimed = session.scalar(select(func.count()).select_from(Image).where(*pending, claim_is_live(utcnow()))) or 0
    return PseudoLabelCounts(images=images, claimed=claimed)


def is_claimed_now(session: Session, image_id: int) -> bool:
    """The image's claim is live; on PostgreSQL the row stays locked until the caller's commit, so that a claim
    cannot slip in between this check and the mask written after it."""
    row = session.execute(select(Image.id).where(Image.id == image_id).with_for_update()).first()
    if row is None:
        return False
    live = select(func.count()).select_from(Image).where(Image.id == image_id, claim_is_live(utcnow()))
    return bool(session.scalar(live))
