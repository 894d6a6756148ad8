"""Labels for REST clients: the manifest of effective labels, one image's label in three formats, and the
bulk export as a streamed zip. An image's label is its newest human (or SAM-assisted) mask, else its newest
model mask: human labels always win (server.store.labels)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from server.deps import SessionDep, SettingsDep, require
from server.effort_schemas import effort_public
from server.errors import error_responses
from server.label_export import ExportOptions, ExportProject, export_zip
from server.label_formats import (
    check_s5mars_classes,
    class_rles,
    color_png,
    decode_mask,
    etag_matches,
    label_etag,
)
from server.label_schemas import (
    ExportFormat,
    LabelFormat,
    LabelManifestItem,
    LabelManifestPage,
    RleClassMask,
    RleLabel,
)
from server.models import Image, MaskVersion, Project, Split, User
from server.schemas import MAX_INT, PathId
from server.store.images import get_image
from server.store.labels import LabelSource, effective_label, label_source, list_labels
from server.store.projects import get_project

router = APIRouter(prefix="/projects/{project_id}", tags=["labels"])

AcceptedOnly = Annotated[
    bool,
    Query(description="Only labels a reviewer accepted: per image its newest accepted version; others left out"),
]

LABEL_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "model": RleLabel,  # the rle format's body, documented as application/json
        "content": {"image/png": {}},
        "description": "png: class-index PNG; color: RGB PNG; rle: COCO RLE JSON",
    },
    304: {"description": "If-None-Match named the current ETag"},
}


def manifest_item(image: Image, mask: MaskVersion) -> LabelManifestItem:
    return LabelManifestItem(
        image_id=image.id,
        file_name=image.file_name,
        split=image.split,
        source=label_source(mask),
        mask_source=mask.source,
        mask_version=mask.version,
        model_version_id=mask.model_version_id,
        confidence=mask.confidence,
        labeled_fraction=mask.labeled_fraction,
        sha256=mask.sha256,
        effort=effort_public(mask.effort),
        base_agreement=mask.base_agreement,
        created_at=mask.created_at,
    )


@router.get(
    "/labels",
    description=(
        "The label manifest: one row per image that has a label, in import order, with the label's source "
        "(human, or model with its model version and confidence), the effort its save cost (human labels saved "
        "from the web app) and its agreement with the version it was saved on top of. Images without any label "
        "are not listed (`GET /images?has_label=false` lists those). `model_version` keeps the labels that model "
        "made."
    ),
)
def list_project_labels(
    project_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("label.export"))],
    source: LabelSource = LabelSource.all,
    model_version: Annotated[
        int | None, Query(ge=1, le=MAX_INT, description="Only labels made by this model version")
    ] = None,
    split: Split | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    accepted_only: AcceptedOnly = False,
) -> LabelManifestPage:
    get_project(session, project_id)
    listing = list_labels(
        session,
        project_id,
        source=source,
        model_version_id=model_version,
        split=split,
        limit=limit,
        offset=offset,
        accepted_only=accepted_only,
    )
    return LabelManifestPage(
        items=[manifest_item(image, mask) for image, mask in listing.rows],
        total=listing.total,
        limit=limit,
        offset=offset,
    )


def _rle_label(image: Image, mask: MaskVersion, project: Project) -> RleLabel:
    ids = decode_mask(mask.png)
    return RleLabel(
        image_id=image.id,
        file_name=image.file_name,
        size=(int(ids.shape[0]), int(ids.shape[1])),
        ignore_index=project.ignore_index,
        source=label_source(mask),
        mask_source=mask.source,
        mask_version=mask.version,
        model_version_id=mask.model_version_id,
        confidence=mask.confidence,
        sha256=mask.sha256,
        masks=[
            RleClassMask(
                category_id=rle.category_id,
                class_id=rle.class_id,
                name=rle.name,
                counts=rle.counts,
                size=rle.size,
                area=rle.area,
                bbox=rle.bbox,
            )
            for rle in class_rles(ids, project.classes, project.ignore_index)
        ],
    )


def _etag(mask: MaskVersion, project: Project, label_format: LabelFormat) -> str:
    if label_format == LabelFormat.png:
        return label_etag(mask.sha256, label_format.value)
    if label_format == LabelFormat.color:  # a recoloured class changes the bytes
        return label_etag(mask.sha256, label_format.value, [c["color"] for c in project.classes])
    provenance = (mask.id, mask.source.value, mask.model_version_id, mask.confidence)
    return label_etag(mask.sha256, label_format.value, provenance, [c["name"] for c in project.classes])


@router.get(
    "/images/{image_id}/label",
    response_class=Response,
    responses=LABEL_RESPONSES,
    description=(
        "The image's label: its newest human mask, else its newest model mask. `format`: png (class ids, "
        "ignore index = unlabeled), color (RGB in the class colours, ignore = black) or rle (COCO RLE JSON, "
        "one entry per class present, category id = class id + 1). Headers X-Label-Source (human|model), "
        "X-Mask-Version, X-Model-Version (model labels), X-Label-Confidence; a strong ETag answers "
        "If-None-Match with 304. 404 when the image has no label yet."
    ),
)
def get_label(
    project_id: PathId,
    image_id: PathId,
    request: Request,
    session: SessionDep,
    _user: Annotated[User, Depends(require("label.export"))],
    label_format: Annotated[LabelFormat, Query(alias="format")] = LabelFormat.png,
) -> Response:
    project = get_project(session, project_id)
    image = get_image(session, project_id, image_id)
    mask = effective_label(session, image)
    etag = _etag(mask, project, label_format)
    headers = {
        "ETag": etag,
        # The label of an image changes when a new version is saved: revalidate every time.
        "Cache-Control": "private, no-cache",
        "X-Label-Source": label_source(mask),
        "X-Mask-Source": mask.source.value,
        "X-Mask-Version": str(mask.version),
    }
    if mask.model_version_id is not None:
        headers["X-Model-Version"] = str(mask.model_version_id)
    if mask.confidence is not None:
        headers["X-Label-Confidence"] = f"{mask.confidence:.6f}"
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if label_format == LabelFormat.png:
        return Response(mask.png, media_type="image/png", headers=headers)
    if label_format == LabelFormat.color:
        return Response(color_png(decode_mask(mask.png), project.classes), media_type="image/png", headers=headers)
    body = _rle_label(image, mask, project).model_dump_json()
    return Response(body, media_type="application/json", headers=headers)


def _download_name(project: Project, export_format: ExportFormat) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", project.name).strip("-.") or f"project-{project.id}"
    return f"{slug}-{export_format.value}.zip"


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "A zip, streamed as it is made"},
        **error_responses(409, s409="format=s5mars for a project whose classes are not the 9 S5Mars classes"),
    },
    description=(
        "Every labeled image's label as a zip, streamed while it is made. `format`: project (labels/<name>.png "
        "in class ids, classes.json, splits/, labels.csv and manifest.json naming each label's source, the effort "
        "its save cost and its agreement with its base version), s5mars "
        "(the same labels in S5Mars raw ids 0 = NULL, 1..9; only for projects with the 9 S5Mars classes in "
        "order, else 409) or coco (annotations.json with one RLE annotation per class present, each with its "
        "source). `images=true` adds images/<name>.<ext>. Names are the image file names' stems, with "
        "`__<image id>` added where two collide. Human labels win over model labels."
    ),
)
def export_labels(
    project_id: PathId,
    session: SessionDep,
    settings: SettingsDep,
    _user: Annotated[User, Depends(require("label.export"))],
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.project,
    images: Annotated[bool, Query(description="Add the image files")] = False,
    source: LabelSource = LabelSource.all,
    split: Split | None = None,
    accepted_only: AcceptedOnly = False,
) -> StreamingResponse:
    project = get_project(session, project_id)
    if export_format == ExportFormat.s5mars:
        check_s5mars_classes(project.classes)
    snapshot = ExportProject(
        id=project.id, name=project.name, classes=list(project.classes), ignore_index=project.ignore_index
    )
    options = ExportOptions(
        format=export_format, include_images=images, source=source, split=split, accepted_only=accepted_only
    )
    name = _download_name(project, export_format)
    disposition = f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name, safe='')}"
    # The stream reads in a session of its own: this request's session is closed once the route returns.
    return StreamingResponse(
        export_zip(settings.resolved_database_url, snapshot, options),
        media_type="application/zip",
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )
