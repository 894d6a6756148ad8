"""Mask versions of an image: save a new one on top of a named base, read one, list the history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile, status
from fastapi.responses import Response

from server.deps import SessionDep, SettingsDep, require
from server.effort_schemas import EFFORT_FORM_DESCRIPTION, MAX_EFFORT_JSON_CHARS, effort_public, parse_effort
from server.errors import NOT_MODIFIED, error_responses
from server.models import MaskSource, MaskVersion, User
from server.rounds import start_auto_round_if_due
from server.schemas import MAX_INT, MaskVersionPublic, PathId
from server.store.consensus import record_pair_if_second
from server.store.images import get_image
from server.store.limits import UploadLimits
from server.store.masks import add_mask_version, get_mask_version, mask_history
from server.store.projects import get_project

router = APIRouter(prefix="/projects/{project_id}/images/{image_id}/masks", tags=["masks"])

PNG_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {"content": {"image/png": {}}, "description": "The mask: single-channel PNG of class ids"},
    **NOT_MODIFIED,
}


def mask_public(mask: MaskVersion, parent_version: int | None) -> MaskVersionPublic:
    return MaskVersionPublic(
        id=mask.id,
        image_id=mask.image_id,
        version=mask.version,
        parent_version=parent_version,
        source=mask.source,
        author_id=mask.author_id,
        model_version_id=mask.model_version_id,
        sha256=mask.sha256,
        class_ids=mask.class_ids,
        labeled_fraction=mask.labeled_fraction,
        confidence=mask.confidence,
        effort=effort_public(mask.effort),
        base_agreement=mask.base_agreement,
        created_at=mask.created_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409),
    description=(
        "Save a new human version. `base_version` names the version the edit started from (empty for the first "
        "mask); if another version was saved since, the answer is 409 and nothing is stored. The mask is a "
        "single-channel PNG of the image's exact size: mode L, or mode P whose palette indices are the class ids; "
        "RGB is refused. Values: the project's class ids, or its ignore index. Marks the image labeled and ends "
        "its queue claim. `effort` (a JSON object) records the work the save cost; the answer and the history "
        "give it back, with `base_agreement`: the share of the pixels labelled in either the base version or this "
        "one that have the same value in both (null without a base). On an image of the project's consensus share "
        "whose human label so far is another annotator's, this second label's agreement with it is computed and "
        "stored (GET .../consensus)."
    ),
)
def save_mask(
    project_id: PathId,
    image_id: PathId,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("mask.write"))],
    mask: Annotated[
        UploadFile, File(description="Single-channel PNG of class ids", json_schema_extra={"minLength": 1})
    ],
    base_version: Annotated[  # not nullable in the document: a form field is text, and "null" is no version
        int,  # noqa: RUF013
        Form(ge=1, le=MAX_INT, description="Version the edit started from; left out or empty = none"),
    ] = None,
    effort: Annotated[
        str | None,
        Form(
            max_length=MAX_EFFORT_JSON_CHARS,
            description=EFFORT_FORM_DESCRIPTION,
            json_schema_extra={"contentMediaType": "application/json"},
        ),
    ] = None,
) -> MaskVersionPublic:
    counted = parse_effort(effort)
    image = get_image(session, project_id, image_id)
    limits = UploadLimits.from_settings(settings)
    data = mask.file.read(limits.max_upload_bytes + 1)
    saved = add_mask_version(
        session,
        image,
        data,
        source=MaskSource.human,
        base_version=base_version,
        author_id=user.id,
        limits=limits,
        effort=counted,
    )
    record_pair_if_second(session, image, saved)  # consensus: the second annotator's label, with its agreement
    session.commit()  # the label is saved whatever happens to the automatic round below
    project = get_project(session, project_id)
    if project.auto_round_after is not None:
        start_auto_round_if_due(session, settings, project)
    return mask_public(saved, base_version)


@router.get("")
def list_mask_versions(
    project_id: PathId, image_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("mask.read"))]
) -> list[MaskVersionPublic]:
    image = get_image(session, project_id, image_id)
    history = mask_history(session, image.id)
    numbers = {mask.id: mask.version for mask in history}
    return [mask_public(mask, numbers.get(mask.parent_id) if mask.parent_id else None) for mask in history]


def _png(request: Request, mask: MaskVersion) -> Response:
    etag = f'"{mask.sha256}"'
    headers = {"ETag": etag, "X-Mask-Version": str(mask.version), "Cache-Control": "private, no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(mask.png, media_type="image/png", headers=headers)


@router.get("/latest", response_class=Response, responses=PNG_RESPONSE)
def get_latest_mask(
    project_id: PathId,
    image_id: PathId,
    request: Request,
    session: SessionDep,
    _user: Annotated[User, Depends(require("mask.read"))],
) -> Response:
    image = get_image(session, project_id, image_id)
    return _png(request, get_mask_version(session, image))


@router.get("/{version}", response_class=Response, responses=PNG_RESPONSE)
def get_mask(
    project_id: PathId,
    image_id: PathId,
    version: PathId,
    request: Request,
    session: SessionDep,
    _user: Annotated[User, Depends(require("mask.read"))],
) -> Response:
    image = get_image(session, project_id, image_id)
    return _png(request, get_mask_version(session, image, version))
