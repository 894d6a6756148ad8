"""The annotation queue of a project: next (claim the best-ranked free image), release, skip."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, status

from server.deps import SessionDep, SettingsDep, require
from server.errors import error_responses
from server.jobs import BrokerUnavailable, commit_and_send
from server.models import ImageStatus, User, utcnow
from server.routers.images import image_public
from server.sam import ensure_embeddings
from server.schemas import PathId, QueueImageRef, QueueNext
from server.store import queue as store
from server.store.confidence import model_confidence
from server.store.images import get_image
from server.store.masks import latest_mask_version
from server.store.projects import get_project
from server.store.reviews import review_public, rework_for

log = logging.getLogger(__name__)
router = APIRouter(prefix="/projects/{project_id}/queue", tags=["queue"])


@router.post(
    "/next",
    responses=error_responses(503),
    description=(
        "Claim the highest-ranked pool image that is unlabeled, not claimed by anyone else (or whose claim "
        "expired) and not skipped by the caller; ranking from the latest done query round, else import order. "
        "A caller who holds a live claim gets that image again (claim renewed). Before all of these, a label of "
        "the caller's that a reviewer rejected comes back (with `review`: the decision and its comment) until "
        "they save a fix (or skip it). In a project with consensus, an image another annotator labelled may come "
        "for a second label (`consensus_second`). `image` is null when nothing is left. The claimed image and "
        "the next MARSLABEL_SAM_PREFETCH ones get their SAM embeddings computed "
        "ahead (`sam_embed` jobs, once per image); when the job broker is down those jobs are recorded as "
        "failed and the claim still stands (the embedding route then answers 503)."
    ),
)
def next_image(
    project_id: PathId,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("queue.use"))],
) -> QueueNext:
    get_project(session, project_id)
    rework = rework_for(session, project_id, user.id)
    if rework is not None:
        image, review, mask = rework
        image.claimed_by = user.id
        image.claim_expires_at = utcnow() + timedelta(seconds=settings.claim_seconds)
        latest = latest_mask_version(session, image.id)
        return QueueNext(
            image=image_public(image, latest.version if latest else None, model_confidence(session, image.id)),
            claim_expires_at=image.claim_expires_at,
            review=review_public(review, mask, session),
        )
    claim = store.claim_next_image(session, project_id, user.id, settings.claim_seconds)
    if claim is None:
        return QueueNext(image=None)
    if settings.sam_prefetch > 0:
        ahead = [claim.image, *store.upcoming_images(session, project_id, user.id, settings.sam_prefetch)]
        _jobs, new = ensure_embeddings(session, settings, ahead, user.id)
        try:
            commit_and_send(session, settings, new)
        except BrokerUnavailable as error:
            # Embeddings ahead are a side effect: the claim, committed, is what the annotator asked for.
            log.warning("queue/next of project %s: embeddings ahead not queued: %s", project_id, error)
    latest = latest_mask_version(session, claim.image.id)
    return QueueNext(
        image=image_public(claim.image, latest.version if latest else None, model_confidence(session, claim.image.id)),
        claim_expires_at=claim.image.claim_expires_at,
        rank=claim.rank,
        score=claim.score,
        consensus_second=claim.image.status == ImageStatus.labeled,
    )


@router.post("/release", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(409))
def release(
    project_id: PathId,
    body: QueueImageRef,
    session: SessionDep,
    user: Annotated[User, Depends(require("queue.use"))],
) -> None:
    store.release_claim(session, get_image(session, project_id, body.image_id), user.id)


@router.post("/skip", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(409))
def skip(
    project_id: PathId,
    body: QueueImageRef,
    session: SessionDep,
    user: Annotated[User, Depends(require("queue.use"))],
) -> None:
    store.skip_image(session, get_image(session, project_id, body.image_id), user.id)
