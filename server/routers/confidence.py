"""A model mask's per-pixel confidence, for the annotation view's low-confidence shading."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from server.deps import SessionDep, require
from server.errors import NOT_MODIFIED
from server.models import User
from server.schemas import PathId
from server.store.confidence import confidence_map_png
from server.store.images import get_image
from server.store.masks import get_mask_version

router = APIRouter(prefix="/projects/{project_id}/images/{image_id}/masks", tags=["masks"])


@router.get(
    "/{version}/confidence",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "8-bit greyscale PNG: top class probability × 255"},
        **NOT_MODIFIED,
    },
    description=(
        "The model's per-pixel confidence behind a model mask version (pseudo-label): an 8-bit greyscale PNG of the "
        "image's size, each pixel round(p × 255) where p is the top class probability (0 = unsure, 255 = certain); "
        "the mask version's `confidence` is their mean. 404 for a human or SAM version, and for a model version "
        "stored before confidence maps were kept."
    ),
)
def get_confidence_map(
    project_id: PathId,
    image_id: PathId,
    version: PathId,
    request: Request,
    session: SessionDep,
    _user: Annotated[User, Depends(require("mask.read"))],
) -> Response:
    image = get_image(session, project_id, image_id)
    mask = get_mask_version(session, image, version)
    png = confidence_map_png(session, mask)
    # A mask version never changes, so neither does its map: cacheable for good (per user: auth).
    etag = f'"{mask.sha256}-confidence"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(png, media_type="image/png", headers=headers)
