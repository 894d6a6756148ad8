"""The annotation queue: hand each annotator the best-ranked image nobody else holds, and claim it for them.

Two annotators asking at once never get the same image. PostgreSQL: the candidate row is locked with
SELECT … FOR UPDATE SKIP LOCKED, so a concurrent request takes the next one instead of waiting. SQLite (no
row locks): a conditional UPDATE that only succeeds on a still-unclaimed row, checked by its row count,
trying the next candidate when another request won.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from server.models import Image, ImageSkip, ImageStatus, Project, Round, RoundStatus, Score, Split, utcnow
from server.store.consensus import awaiting_second_label
from server.store.errors import Conflict

SQLITE_CANDIDATES_PER_TRY = 16
SQLITE_TRIES = 50


@dataclass(frozen=True)
class QueueClaim:
    image: Image
    rank: int | None
    score: float | None


def latest_done_round_id(session: Session, project_id: int) -> int | None:
    return session.scalar(
        select(Round.id)
        .where(Round.project_id == project_id, Round.status == RoundStatus.done)
        .order_by(Round.index.desc())
        .limit(1)
    )


def _consensus_percent(session: Session, project_id: int) -> int:
    return session.scalar(select(Project.consensus_percent).where(Project.id == project_id)) or 0


def _wanted(user_id: int, consensus_percent: int):  # type: ignore[no-untyped-def]
    """An image the user may label: unlabeled, or (consensus) labelled by someone else and wanting a second label."""
    return or_(Image.status == ImageStatus.unlabeled, awaiting_second_label(consensus_percent, user_id))


def _claimable(project_id: int, user_id: int, now: datetime, consensus_percent: int) -> list:  # type: ignore[type-arg]
    skipped = exists().where(ImageSkip.image_id == Image.id, ImageSkip.user_id == user_id)
    return [
        Image.project_id == project_id,
        Image.split == Split.pool,
        _wanted(user_id, consensus_percent),
        or_(Image.claimed_by.is_(None), Image.claim_expires_at <= now),
        ~skipped,
    ]


def _ranked(query: Select, round_id: int | None) -> Select:  # type: ignore[type-arg]
    # Images scored by the latest done round first, by rank; then the rest (imported since) in import order.
    if round_id is None:
        return query.order_by(Image.import_order, Image.id)
    return query.order_by(Score.rank.is_(None), Score.rank, Image.import_order, Image.id)


def _with_scores(query: Select, round_id: int | None) -> Select:  # type: ignore[type-arg]
    if round_id is None:
        return query
    return query.outerjoin(Score, and_(Score.image_id == Image.id, Score.round_id == round_id))


def _score_of(session: Session, round_id: int | None, image_id: int) -> tuple[int | None, float | None]:
    if round_id is None:
        return None, None
    row = session.execute(
        select(Score.rank, Score.score).where(Score.round_id == round_id, Score.image_id == image_id)
    ).first()
    return (row[0], row[1]) if row else (None, None)


def current_claim(session: Session, project_id: int, user_id: int, now: datetime) -> Image | None:
    return session.scalar(
        select(Image)
        .where(
            Image.project_id == project_id,
            Image.claimed_by == user_id,
            Image.claim_expires_at > now,
            _wanted(user_id, _consensus_percent(session, project_id)),
        )
        .order_by(Image.id)
        .limit(1)
    )


def claim_next_image(session: Session, project_id: int, user_id: int, claim_seconds: int) -> QueueClaim | None:
    """Claim the next image for the user (their live claim again, renewed, if they hold one); None when no
    image is left for them. Does not commit: the claim holds once the caller commits."""
    now = utcnow()
    expires = now + timedelta(seconds=claim_seconds)
    round_id = latest_done_round_id(session, project_id)

    held = current_claim(session, project_id, user_id, now)
    if held is not None:
        held.claim_expires_at = expires
        session.flush()
        return QueueClaim(held, *_score_of(session, round_id, held.id))

    consensus = _consensus_percent(session, project_id)
    if session.get_bind().dialect.name == "postgresql":
        image = _claim_with_row_lock(session, project_id, user_id, now, expires, round_id, consensus)
    else:
        image = _claim_with_conditional_update(session, project_id, user_id, now, expires, round_id, consensus)
    if image is None:
        return None
    return QueueClaim(image, *_score_of(session, round_id, image.id))


def _claim_with_row_lock(
    session: Session,
    project_id: int,
    user_id: int,
    now: datetime,
    expires: datetime,
    round_id: int | None,
    consensus_percent: int,
) -> Image | None:
    query = _with_scores(select(Image), round_id).where(*_claimable(project_id, user_id, now, consensus_percent))
    query = _ranked(query, round_id).limit(1).with_for_update(skip_locked=True, of=Image)
    image = session.scalar(query)
    if image is None:
        return None
    image.claimed_by = user_id
    image.claim_expires_at = expires
    session.flush()
    return image


def _claim_with_conditional_update(
    session: Session,
    project_id: int,
    user_id: int,
    now: datetime,
    expires: datetime,
    round_id: int | None,
    consensus_percent: int,
) -> Image | None:
    for _ in range(SQLITE_TRIES):
        query = _with_scores(select(Image.id), round_id).where(*_claimable(project_id, user_id, now, consensus_percent))
        candidates = list(session.scalars(_ranked(query, round_id).limit(SQLITE_CANDIDATES_PER_TRY)))
        if not candidates:
            return None
        for image_id in candidates:
            claimed = session.execute(
                update(Image)
                .where(
                    Image.id == image_id,
                    _wanted(user_id, consensus_percent),
                    or_(Image.claimed_by.is_(None), Image.claim_expires_at <= now),
                )
                .values(claimed_by=user_id, claim_expires_at=expires)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                return session.get(Image, image_id, populate_existing=True)
    return None


def release_claim(session: Session, image: Image, user_id: int) -> None:
    """Drop the user's claim on the image; Conflict if they do not hold it."""
    if image.claimed_by != user_id:
        raise Conflict(f"image {image.id} is not claimed by you")
    image.claimed_by = None
    image.claim_expires_at = None
    session.flush()


def skip_image(session: Session, image: Image, user_id: int) -> None:
    """The user's `next` will not hand them this image again; their claim on it, if any, ends."""
    if session.get(ImageSkip, (image.id, user_id)) is None:
        session.add(ImageSkip(image_id=image.id, user_id=user_id))
    if image.claimed_by == user_id:
        image.claimed_by = None
        image.claim_expires_at = None
    session.flush()


LATEST_DONE_ROUND = -1  # queue_head's default: the ranking of the latest done round


def queue_head(session: Session, project_id: int, limit: int, round_id: int | None = LATEST_DONE_ROUND) -> list[Image]:
    """The first `limit` images the queue would hand to anyone now (unlabeled pool images nobody holds), in the
    ranking of `round_id` (default: the latest done round; None: import order). What SAM embeds after an import,
    and after a round with that round's ranking (written before the round itself is marked done)."""
    if limit <= 0:
        return []
    if round_id == LATEST_DONE_ROUND:
        round_id = latest_done_round_id(session, project_id)
    free = or_(Image.claimed_by.is_(None), Image.claim_expires_at <= utcnow())
    query = _with_scores(select(Image), round_id).where(
        Image.project_id == project_id, Image.split == Split.pool, Image.status == ImageStatus.unlabeled, free
    )
    return list(session.scalars(_ranked(query, round_id).limit(limit)))


def upcoming_images(session: Session, project_id: int, user_id: int, limit: int) -> list[Image]:
    """The next `limit` images `claim_next_image` would hand this user, in rank order, without claiming them
    (what SAM embeds ahead of time)."""
    if limit <= 0:
        return []
    round_id = latest_done_round_id(session, project_id)
    consensus = _consensus_percent(session, project_id)
    query = _with_scores(select(Image), round_id).where(*_claimable(project_id, user_id, utcnow(), consensus))
    return list(session.scalars(_ranked(query, round_id).limit(limit)))
