"""Consensus pairs: images labelled by two annotators and the agreement of their labels (the share of images and
the threshold are project settings, PATCH /projects/{id})."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.deps import SessionDep, require
from server.models import ConsensusPair, MaskVersion, Project, User
from server.schemas import MAX_INT, PathId
from server.store import consensus as store
from server.store.images import get_image
from server.store.projects import get_project
from server.team_schemas import ClassAgreement, ConsensusLabel, ConsensusPage, ConsensusPublic

router = APIRouter(prefix="/projects/{project_id}", tags=["consensus"])


def consensus_public(session: Session, project: Project, pairs: list[ConsensusPair]) -> list[ConsensusPublic]:
    """Pairs as the API shows them: each label's version number and author name, every class's IoU by name."""
    mask_ids = {p.first_mask_id for p in pairs} | {p.second_mask_id for p in pairs}
    versions = (
        dict(session.execute(select(MaskVersion.id, MaskVersion.version).where(MaskVersion.id.in_(mask_ids))).all())
        if mask_ids
        else {}
    )
    names = store.user_names(session, {p.first_author_id for p in pairs} | {p.second_author_id for p in pairs})
    class_names = {int(c["id"]): str(c["name"]) for c in project.classes}

    def label(mask_id: int, author_id: int | None) -> ConsensusLabel:
        return ConsensusLabel(
            mask_version=versions[mask_id],
            author_id=author_id,
            author_name=names.get(author_id) if author_id is not None else None,
        )

    return [
        ConsensusPublic(
            id=pair.id,
            image_id=pair.image_id,
            first=label(pair.first_mask_id, pair.first_author_id),
            second=label(pair.second_mask_id, pair.second_author_id),
            miou=pair.miou,
            classes=[
                ClassAgreement(class_id=int(k), name=class_names.get(int(k), f"class {k}"), iou=v)
                for k, v in sorted(pair.class_iou.items(), key=lambda item: int(item[0]))
            ],
            compared_fraction=pair.compared_fraction,
            threshold=pair.threshold,
            disagreement=pair.disagreement,
            created_at=pair.created_at,
        )
        for pair in pairs
    ]


@router.get(
    "/consensus",
    description=(
        "The project's consensus pairs, oldest first: per image labelled by two annotators, both labels and their "
        "agreement (IoU per class and its mean, over the pixels both labelled). `disagreement=true` lists only "
        "the pairs below the threshold (those sent to review). With the project's figures."
    ),
)
def list_consensus(
    project_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("review.read"))],
    disagreement: Annotated[bool | None, Query(description="only pairs below (true) or at/above (false)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> ConsensusPage:
    project = get_project(session, project_id)
    query = store.pairs_query(project_id, disagreement)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pairs = list(session.scalars(query.limit(limit).offset(offset)))
    counts = store.pair_counts(session, project_id)
    return ConsensusPage(
        items=consensus_public(session, project, pairs),
        total=total,
        pairs=counts.pairs,
        disagreements=counts.disagreements,
        mean_miou=counts.mean_miou,
        consensus_percent=project.consensus_percent,
        consensus_threshold=project.consensus_threshold,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/images/{image_id}/consensus",
    description="The image's consensus pair (404 when it was not labelled by two annotators).",
)
def image_consensus(
    project_id: PathId,
    image_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("review.read"))],
) -> ConsensusPublic:
    project = get_project(session, project_id)
    image = get_image(session, project_id, image_id)
    return consensus_public(session, project, [store.image_pair(session, image)])[0]
