"""Review of human labels: the queue of saved human labels awaiting a decision (all, or a per-project share
drawn per mask version), the append-only decisions, and the rejected labels that go back to their author.

What is reviewed is an image's effective human label: its newest human-side version (human or SAM-assisted).
No commit inside: the route owns its one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from server.models import ConsensusPair, Image, ImageSkip, MaskVersion, Project, Review, ReviewDecision, User
from server.schemas import ReviewPublic
from server.store.errors import Conflict, InvalidInput, NotFound
from server.store.labels import HUMAN_SIDE, LabelSource, effective_labels_query

# Which versions a sampled share draws: a fixed scramble of the mask version's id (every 100 consecutive ids
# spread over 0..99), so the draw never changes. Kept inside 32-bit integer arithmetic for PostgreSQL.
_DRAW_MODULUS, _DRAW_MULTIPLIER = 9973, 7919


def sampled(percent: int):  # type: ignore[no-untyped-def]
    """SQL condition: the mask version is in a `percent` share of versions (fixed per version)."""
    return ((MaskVersion.id % _DRAW_MODULUS) * _DRAW_MULTIPLIER) % 100 < percent


def _decided():  # type: ignore[no-untyped-def]
    return exists().where(Review.mask_version_id == MaskVersion.id)


def pending_query(project: Project) -> Select[tuple[Image, MaskVersion]]:
    """(image, its effective human label) awaiting a decision, oldest label first."""
    query = effective_labels_query(project.id, source=LabelSource.human).where(~_decided())
    if project.review_percent < 100:  # a consensus pair below its threshold is reviewed whatever the draw
        disagreeing = exists().where(
            ConsensusPair.second_mask_id == MaskVersion.id, ConsensusPair.disagreement.is_(True)
        )
        query = query.where(or_(sampled(project.review_percent), disagreeing))
    return query.order_by(None).order_by(MaskVersion.created_at, MaskVersion.id)


@dataclass(frozen=True)
class ReviewCounts:
    pending: int
    accepted: int
    rejected: int


def review_counts(session: Session, project: Project) -> ReviewCounts:
    pending = session.scalar(select(func.count()).select_from(pending_query(project).subquery())) or 0
    rows = session.execute(
        select(Review.decision, func.count())
        .join(Image, Image.id == Review.image_id)
        .where(Image.project_id == project.id)
        .group_by(Review.decision)
    ).all()
    by = {decision: count for decision, count in rows}
    return ReviewCounts(pending, by.get(ReviewDecision.accepted, 0), by.get(ReviewDecision.rejected, 0))


def latest_human_version(session: Session, image: Image) -> MaskVersion | None:
    return session.scalar(
        select(MaskVersion)
        .options(defer(MaskVersion.png))
        .where(MaskVersion.image_id == image.id, MaskVersion.source.in_(HUMAN_SIDE))
        .order_by(MaskVersion.version.desc())
        .limit(1)
    )


def decide(
    session: Session,
    image: Image,
    mask_version: int,
    decision: ReviewDecision,
    comment: str,
    reviewer: User,
) -> Review:
    """Record a decision on version `mask_version` of the image. It must be the image's newest human label
    (an older one is a stale review) and must not be decided yet; a rejection needs a comment."""
    latest = latest_human_version(session, image)
    if latest is None:
        raise Conflict(f"image {image.id} has no human label to review")
    named = session.scalar(
        select(MaskVersion)
        .options(defer(MaskVersion.png))
        .where(MaskVersion.image_id == image.id, MaskVersion.version == mask_version)
    )
    if named is None:
        raise NotFound("mask version", mask_version, within=f"image {image.id}")
    if named.source not in HUMAN_SIDE:
        raise Conflict(f"version {mask_version} of image {image.id} is a {named.source.value} mask, not a human label")
    if named.id != latest.id:
        raise Conflict(
            f"stale review: version {mask_version} of image {image.id} is no longer its newest human label "
            f"(version {latest.version} is); review that one"
        )
    earlier = session.scalar(select(Review).where(Review.mask_version_id == named.id))
    if earlier is not None:
        raise Conflict(
            f"version {mask_version} of image {image.id} was already {earlier.decision.value} "
            f"at {earlier.created_at.isoformat()}; a fix is a new version, reviewed again"
        )
    comment = comment.strip()
    if decision is ReviewDecision.rejected and not comment:
        raise InvalidInput("a rejection needs a comment saying what to fix")
    review = Review(
        image_id=image.id, mask_version_id=named.id, decision=decision, comment=comment, reviewer_id=reviewer.id
    )
    try:
        with session.begin_nested():
            session.add(review)
            session.flush()
    except IntegrityError as error:  # decided at the same moment by another reviewer
        raise Conflict(f"version {mask_version} of image {image.id} was decided by someone else just now") from error
    return review


def image_reviews(session: Session, image_id: int) -> list[tuple[Review, MaskVersion]]:
    rows = session.execute(
        select(Review, MaskVersion)
        .options(defer(MaskVersion.png))
        .join(MaskVersion, MaskVersion.id == Review.mask_version_id)
        .where(Review.image_id == image_id)
        .order_by(Review.created_at, Review.id)
    )
    return [(review, mask) for review, mask in rows]


def rework_for(session: Session, project_id: int, user_id: int) -> tuple[Image, Review, MaskVersion] | None:
    """The author's oldest rejected label still waiting for a fix: the image whose newest human label is theirs
    and was rejected. It goes to the top of their queue."""
    query = (
        effective_labels_query(project_id, source=LabelSource.human)
        .add_columns(Review)
        .join(Review, Review.mask_version_id == MaskVersion.id)
        .where(MaskVersion.author_id == user_id, Review.decision == ReviewDecision.rejected)
        .where(~exists().where(ImageSkip.image_id == Image.id, ImageSkip.user_id == user_id))
        .order_by(None)
        .order_by(Review.created_at, Review.id)
        .limit(1)
    )
    row = session.execute(query).first()
    return None if row is None else (row[0], row[2], row[1])


def review_public(review: Review, mask: MaskVersion, session: Session) -> ReviewPublic:
    reviewer = session.get(User, review.reviewer_id) if review.reviewer_id is not None else None
    return ReviewPublic(
        id=review.id,
        image_id=review.image_id,
        mask_version=mask.version,
        decision=review.decision,
        comment=review.comment,
        reviewer_id=review.reviewer_id,
        reviewer_name=reviewer.name if reviewer else None,
        created_at=review.created_at,
    )
