"""Imports from a server-side folder, as a job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status

from server.deps import SessionDep, SettingsDep, require
from server.errors import error_responses
from server.imports import ImportPathError, resolve_import_path
from server.job_schemas import ImportCreate, JobPublic
from server.jobs import enqueue_job
from server.models import User
from server.schemas import PathId
from server.store.projects import get_project

router = APIRouter(tags=["imports"])


@router.post(
    "/projects/{project_id}/imports",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        403,
        404,
        503,
        s403="The caller's role may not import, server-side imports are disabled (MARSLABEL_IMPORT_ROOT unset), or "
        "the path leaves the import root",
        s404="The project, or the folder under the import root, does not exist",
    ),
)
def start_import(
    project_id: PathId,
    body: ImportCreate,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("import.start"))],
) -> JobPublic:
    get_project(session, project_id)
    try:
        # Checked here for a clear answer now; the worker checks again against its own import root.
        resolve_import_path(settings.import_root, body.path)
    except ImportPathError as error:
        raise HTTPException(error.status, str(error)) from error
    params = {
        "path": body.path,
        "layout": body.layout,
        "split": body.split.value if body.split else None,
    }
    job = enqueue_job(session, settings, kind="import", project_id=project_id, params=params, created_by=user.id)
    return JobPublic.model_validate(job)
