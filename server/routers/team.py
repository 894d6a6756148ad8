"""The team's figures for the dashboard: per annotator and the review panel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from server.deps import SessionDep, require
from server.models import User
from server.schemas import PathId
from server.store import team as store
from server.store.effort import median_seconds_by_author
from server.store.projects import get_project
from server.team_schemas import AnnotatorFiguresPublic, ReviewPanelPublic, TeamFigures

router = APIRouter(prefix="/projects/{project_id}", tags=["team"])


@router.get(
    "/team",
    description=(
        "Per annotator (members who label, and anyone who saved a human label here): labels saved, decisions on "
        "them and the acceptance rate, agreement with reviewers (mIoU with the corrections a reviewer or lead "
        f"saved on top of their labels, the newest {store.MAX_CORRECTIONS}) and with other annotators (mean mIoU "
        "of their consensus pairs), median active seconds per image (an image's saves summed; null until the web "
        "app recorded effort for them). The review panel: pending, accepted, rejected, consensus pairs and "
        "disagreements."
    ),
)
def team_figures(
    project_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("review.read"))]
) -> TeamFigures:
    project = get_project(session, project_id)
    panel = store.review_panel(session, project)
    seconds = median_seconds_by_author(session, project.id)
    return TeamFigures(
        review=ReviewPanelPublic(
            pending=panel.pending,
            accepted=panel.accepted,
            rejected=panel.rejected,
            consensus_pairs=panel.pairs,
            disagreements=panel.disagreements,
            mean_consensus_miou=panel.mean_pair_miou,
        ),
        annotators=[
            AnnotatorFiguresPublic(
                user_id=f.user_id,
                user_name=f.user_name,
                project_role=f.project_role,
                labels_saved=f.labels_saved,
                images_labelled=f.images_labelled,
                accepted=f.accepted,
                rejected=f.rejected,
                acceptance_rate=f.acceptance_rate,
                agreement_with_reviewers=store.mean(f.correction_mious),
                corrections=len(f.correction_mious),
                agreement_with_annotators=store.mean(f.pair_mious),
                consensus_pairs=len(f.pair_mious),
                median_seconds_per_image=seconds.get(f.user_id),
            )
            for f in store.annotator_figures(session, project)
        ],
    )
