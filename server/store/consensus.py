"""Consensus: a fixed share of a project's images is labelled twice, by two different annotators; when the second
label is saved, the agreement of the two (IoU per class and its mean over the pixels both labelled) is stored as a
pair, and a pair below the project's threshold goes to review with both versions.

Which images: a fixed scramble of the image id (as the review draw scrambles mask version ids), so an image is in
the share or not for good, whoever asks. The queue hands an image in the share that has one annotator's label to
another annotator (never one who already labelled it) until its pair exists. No commit inside.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from server.models import ConsensusPair, Image, ImageStatus, MaskVersion, Project, User
from server.store.errors import NotFound
from server.store.labels import HUMAN_SIDE

# A fixed scramble of the image id over 0..99 (32-bit safe on PostgreSQL); not the review draw's constants, so
# the images labelled twice and the labels drawn for review are not the same share.
_DRAW_MODULUS, _DRAW_MULTIPLIER = 9967, 6007


def in_share(image_id: int, percent: int) -> bool:
    return ((image_id % _DRAW_MODULUS) * _DRAW_MULTIPLIER) % 100 < percent


def in_share_sql(percent: int) -> ColumnElement[bool]:
    """SQL condition: the image is in a `percent` share of images (fixed per image)."""
    return ((Image.id % _DRAW_MODULUS) * _DRAW_MULTIPLIER) % 100 < percent


def awaiting_second_label(percent: int, user_id: int) -> ColumnElement[bool]:
    """SQL condition on Image: a labelled image of the consensus share with no pair yet, that `user_id` never
    labelled: the queue may hand it to them as the second annotator."""
    if percent <= 0:
        return Image.id.is_(None)  # never true
    human = MaskVersion.source.in_(HUMAN_SIDE)
    return and_(
        Image.status == ImageStatus.labeled,
        in_share_sql(percent),
        ~exists().where(ConsensusPair.image_id == Image.id),
        exists().where(MaskVersion.image_id == Image.id, human),
        ~exists().where(MaskVersion.image_id == Image.id, human, MaskVersion.author_id == user_id),
    )


@dataclass(frozen=True)
class Agreement:
    miou: float | None  # mean over the classes either label used where both labelled; None: nothing in common
    class_iou: dict[int, float | None]  # every project class: its IoU, None where neither used it there
    compared_fraction: float  # share of pixels both labelled


def mask_agreement(first: np.ndarray, second: np.ndarray, class_ids: list[int], ignore_index: int) -> Agreement:
    """IoU per class between two class-id masks over the pixels both labelled (neither is the ignore index)."""
    if first.shape != second.shape:
        raise ValueError(f"masks differ in size: {first.shape} and {second.shape}")
    both = (first != ignore_index) & (second != ignore_index)
    a, b = first[both], second[both]
    class_iou: dict[int, float | None] = {}
    for class_id in class_ids:
        in_a, in_b = a == class_id, b == class_id
        union = int(np.count_nonzero(in_a | in_b))
        class_iou[class_id] = None if union == 0 else int(np.count_nonzero(in_a & in_b)) / union
    used = [iou for iou in class_iou.values() if iou is not None]
    return Agreement(
        miou=float(np.mean(used)) if used else None,
        class_iou=class_iou,
        compared_fraction=float(np.count_nonzero(both)) / both.size if both.size else 0.0,
    )


def mask_pixels(session: Session, mask: MaskVersion) -> np.ndarray:
    png = session.scalar(select(MaskVersion.png).where(MaskVersion.id == mask.id))
    assert png is not None
    return np.asarray(PILImage.open(io.BytesIO(png)), dtype=np.uint8)


def record_pair_if_second(session: Session, image: Image, saved: MaskVersion) -> ConsensusPair | None:
    """After a human save: when the image is in its project's consensus share, has no pair yet, and its human
    label before this one is another annotator's (and this author had none on it), store the pair and its
    agreement. None otherwise."""
    project = session.get(Project, image.project_id)
    assert project is not None
    if saved.source not in HUMAN_SIDE or saved.author_id is None or not in_share(image.id, project.consensus_percent):
        return None
    if session.scalar(select(ConsensusPair.id).where(ConsensusPair.image_id == image.id)) is not None:
        return None
    earlier = list(
        session.scalars(
            select(MaskVersion)
            .options(defer(MaskVersion.png))
            .where(
                MaskVersion.image_id == image.id,
                MaskVersion.source.in_(HUMAN_SIDE),
                MaskVersion.version < saved.version,
            )
            .order_by(MaskVersion.version.desc())
        )
    )
    if not earlier or earlier[0].author_id in (None, saved.author_id):
        return None
    if any(m.author_id == saved.author_id for m in earlier):
        return None  # never the same person twice
    first = earlier[0]
    agreement = mask_agreement(
        mask_pixels(session, first),
        mask_pixels(session, saved),
        [int(c["id"]) for c in project.classes],
        project.ignore_index,
    )
    threshold = project.consensus_threshold
    pair = ConsensusPair(
        image_id=image.id,
        first_mask_id=first.id,
        second_mask_id=saved.id,
        first_author_id=first.author_id,
        second_author_id=saved.author_id,
        miou=agreement.miou,
        class_iou={str(k): v for k, v in agreement.class_iou.items()},
        compared_fraction=agreement.compared_fraction,
        threshold=threshold,
        disagreement=agreement.miou is None or agreement.miou < threshold,
    )
    try:
        with session.begin_nested():
            session.add(pair)
            session.flush()
    except IntegrityError:  # another second label of the image made the pair at the same moment
        return None
    return pair


def pairs_query(project_id: int, disagreement: bool | None = None) -> Select[tuple[ConsensusPair]]:
    query = (
        select(ConsensusPair)
        .join(Image, Image.id == ConsensusPair.image_id)
        .where(Image.project_id == project_id)
        .order_by(ConsensusPair.created_at, ConsensusPair.id)
    )
    if disagreement is not None:
        query = query.where(ConsensusPair.disagreement.is_(disagreement))
    return query


@dataclass(frozen=True)
class PairCounts:
    pairs: int
    disagreements: int
    mean_miou: float | None


def pair_counts(session: Session, project_id: int) -> PairCounts:
    row = session.execute(
        select(
            func.count(ConsensusPair.id),
            func.count(ConsensusPair.id).filter(ConsensusPair.disagreement.is_(True)),
            func.avg(ConsensusPair.miou),
        )
        .join(Image, Image.id == ConsensusPair.image_id)
        .where(Image.project_id == project_id)
    ).one()
    return PairCounts(int(row[0]), int(row[1]), None if row[2] is None else float(row[2]))


def image_pair(session: Session, image: Image) -> ConsensusPair:
    pair = session.scalar(select(ConsensusPair).where(ConsensusPair.image_id == image.id))
    if pair is None:
        raise NotFound("consensus pair of image", image.id, within=f"project {image.project_id} (not labelled twice)")
    return pair


def pairs_by_second_mask(session: Session, mask_ids: set[int]) -> dict[int, ConsensusPair]:
    if not mask_ids:
        return {}
    pairs = session.scalars(select(ConsensusPair).where(ConsensusPair.second_mask_id.in_(mask_ids)))
    return {pair.second_mask_id: pair for pair in pairs}


def user_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {user.id: user.name for user in session.scalars(select(User).where(User.id.in_(wanted)))}
