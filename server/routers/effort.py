"""Annotation effort per round for the dashboard: from the effort the web app sends with each human save."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from server.deps import SessionDep, require
from server.effort_schemas import EffortFigures, EffortRound, ProjectEffort
from server.models import User
from server.schemas import PathId
from server.store.effort import effort_by_round
from server.store.projects import get_project

router = APIRouter(prefix="/projects/{project_id}", tags=["metrics"])


@router.get(
    "/metrics/effort",
    description=(
        "Effort per image per round, from real saves: a labelling session is one annotator's work on one image "
        "(the effort of their human saves of it summed; saves without recorded effort are left out, never counted "
        "as 0). Sessions are grouped by the newest round that had finished when their first save was made "
        "(`after_round` 0: before any round finished), and split by where that save started: on a model version "
        "(`from_pseudo_label`), on nothing or a hidden first consensus label (`from_scratch`), or on another "
        "person's label (`from_human_label`). Each group: how many sessions, their median active seconds, median "
        "counted actions (SAM clicks and boxes, commits, strokes, fills, polygons, undo and redo) and median "
        "agreement of the first save with its base (1 − that is how much of a pseudo-label was corrected)."
    ),
)
def get_effort(
    project_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("model.read"))]
) -> ProjectEffort:
    get_project(session, project_id)
    rounds = []
    for row in effort_by_round(session, project_id):
        figures = {
            kind: EffortFigures(
                images=images, median_active_seconds=seconds, median_actions=actions, median_base_agreement=agreement
            )
            for kind, (images, seconds, actions, agreement) in row.figures.items()
        }
        rounds.append(EffortRound(after_round=row.after_round, labeled_count=row.labeled_count, **figures))
    return ProjectEffort(project_id=project_id, rounds=rounds)
