"""Review: the queue of saved human labels awaiting a decision, accept / reject (append-only), an image's
decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import select

from server.deps import SessionDep, require
from server.errors import error_responses
from server.models import User
from server.routers.consensus import consensus_public
from server.routers.images import image_public
from server.schemas import MAX_INT, PathId, ReviewPublic
from server.store import reviews as store
from server.store.consensus import pairs_by_second_mask
from server.store.images import get_image
from server.store.masks import latest_mask_version
from server.store.projects import get_project
from server.team_schemas import ReviewCreate, ReviewQueueItem, ReviewQueuePage

router = APIRouter(prefix="/projects/{project_id}", tags=["reviews"])


@router.get(
    "/reviews/queue",
    description=(
        "Saved human labels awaiting a decision, oldest first: per image its newest human label, when no "
        "decision was recorded on that version (and, with the project's `review_percent` below 100, when the "
        "version is in the drawn share, or is the second label of a consensus pair below the threshold: then "
        "`consensus` holds both labels and their agreement). With the counts of decisions so far."
    ),
)
def review_queue(
    project_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("review.read"))],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> ReviewQueuePage:
    project = get_project(session, project_id)
    rows = session.execute(store.pending_query(project).limit(limit).offset(offset)).all()
    counts = store.review_counts(session, project)
    authors = {
        user.id: user.name
        for user in session.scalars(select(User).where(User.id.in_({row[1].author_id for row in rows} - {None})))
    }
    disagreeing = [
        pair for pair in pairs_by_second_mask(session, {row[1].id for row in rows}).values() if pair.disagreement
    ]
    consensus = {
        p.second_mask_id: public
        for p, public in zip(disagreeing, consensus_public(session, project, disagreeing), strict=True)
    }
    items = []
    for image, mask in ((row[0], row[1]) for row in rows):
        latest = latest_mask_version(session, image.id)
        items.append(
            ReviewQueueItem(
                image=image_public(image, latest.version if latest else None),
                mask_version=mask.version,
                mask_source=mask.source,
                author_id=mask.author_id,
                author_name=authors.get(mask.author_id) if mask.author_id is not None else None,
                labeled_fraction=mask.labeled_fraction,
                saved_at=mask.created_at,
                effort_seconds=(mask.effort or {}).get("active_seconds"),
                consensus=consensus.get(mask.id),
            )
        )
    return ReviewQueuePage(
        items=items,
        total=counts.pending,
        accepted=counts.accepted,
        rejected=counts.rejected,
        review_percent=project.review_percent,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/images/{image_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409),
    description=(
        "Accept or reject the image's newest human label, named by `mask_version`. A rejection needs a comment; "
        "the image then goes back to the top of its author's queue with it. 404 when the image has no version "
        "`mask_version`; 409 when the image has no human label, when that version is not a human label, when a "
        "newer human version was saved since (stale review), or when that version was already decided; nothing "
        "is stored then."
    ),
)
def review_image(
    project_id: PathId,
    image_id: PathId,
    body: ReviewCreate,
    session: SessionDep,
    user: Annotated[User, Depends(require("review.write"))],
) -> ReviewPublic:
    image = get_image(session, project_id, image_id)
    review = store.decide(session, image, body.mask_version, body.decision, body.comment, user)
    mask = next(m for r, m in store.image_reviews(session, image.id) if r.id == review.id)
    return store.review_public(review, mask, session)


@router.get("/images/{image_id}/reviews", description="Every decision on the image's labels, oldest first.")
def list_image_reviews(
    project_id: PathId,
    image_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("review.read"))],
) -> list[ReviewPublic]:
    image = get_image(session, project_id, image_id)
    return [store.review_public(r, m, session) for r, m in store.image_reviews(session, image.id)]
