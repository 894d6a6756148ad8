"""Images of a project: multipart upload of many files (with optional labels), listing, bytes, thumbnails."""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from server.deps import SessionDep, SettingsDep, require
from server.errors import NOT_MODIFIED
from server.models import Image, ImageStatus, Split, User
from server.sam import queue_head_embeddings
from server.schemas import (
    MAX_INT,
    ImagePage,
    ImagePublic,
    ImageUploadItem,
    ImageUploadResult,
    PathId,
    SamEmbedAhead,
)
from server.settings import Settings
from server.store import images as store
from server.store.confidence import model_confidence, model_confidences
from server.store.errors import InvalidInput
from server.store.limits import UploadLimits
from server.store.masks import latest_mask_version
from server.store.projects import get_project

router = APIRouter(prefix="/projects/{project_id}/images", tags=["images"])
log = logging.getLogger(__name__)


def image_public(image: Image, latest_mask_version: int | None, model_confidence: float | None = None) -> ImagePublic:
    update = {"latest_mask_version": latest_mask_version, "model_confidence": model_confidence}
    return ImagePublic.model_validate(image).model_copy(update=update)


def _base_name(name: str | None) -> str:
    return PurePosixPath((name or "").replace("\\", "/")).name


def _read_limited(upload: UploadFile, max_bytes: int) -> bytes:
    # One byte past the limit is enough to know the file is too large, without reading all of it.
    return upload.file.read(max_bytes + 1)


def _match_labels(labels: list[UploadFile], image_names: list[str]) -> tuple[dict[str, UploadFile], list[str]]:
    """Labels by the image they belong to: the same file name, or the same name before the extension."""
    by_name = {_base_name(label.filename): label for label in labels}
    by_stem = {PurePosixPath(name).stem: label for name, label in by_name.items()}
    matched: dict[str, UploadFile] = {}
    for name in image_names:
        label = by_name.get(name) or by_stem.get(PurePosixPath(name).stem)
        if label is not None:
            matched[name] = label
    used = {id(label) for label in matched.values()}
    unmatched = [name for name, label in by_name.items() if id(label) not in used]
    return matched, unmatched


@router.post(
    "",
    description=(
        "Upload many images at once (PNG, JPEG, TIFF). Each file gets its own answer: stored, duplicate (same "
        "bytes already in the project) or rejected with the reason. Optional `labels`: single-channel PNG masks "
        "matched to images by file name (same name, or same name before the extension); an image whose label is "
        "bad is rejected with it. When images were stored, the head of the queue (MARSLABEL_SAM_QUEUE_HEAD images) "
        "gets its SAM embeddings queued, as after an import job (`sam_embed`); a broker that refuses them is said "
        "there and never fails the upload. When every file is rejected the answer is a 422 that carries the same "
        "fields (`items` with each reason)."
    ),
)
def upload_images(
    project_id: PathId,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("image.upload"))],
    files: Annotated[list[UploadFile], File(description="Image files", json_schema_extra={"minItems": 1})],
    labels: Annotated[list[UploadFile], File(description="Label PNGs named like their images")] = [],  # noqa: B006
    split: Annotated[Split, Form()] = Split.pool,
) -> ImageUploadResult:
    project = get_project(session, project_id)
    limits = UploadLimits.from_settings(settings)
    names = [_base_name(upload.filename) or f"file-{index}" for index, upload in enumerate(files)]
    matched, unmatched = _match_labels(labels, names)
    items: list[ImageUploadItem] = []
    for name, upload in zip(names, files, strict=True):
        label = matched.get(name)
        label_png = _read_limited(label, limits.max_upload_bytes) if label is not None else None
        result = store.add_image(
            session,
            project,
            name,
            _read_limited(upload, limits.max_upload_bytes),
            split=split,
            label_png=label_png,
            author_id=user.id,
            limits=limits,
        )
        items.append(
            ImageUploadItem(
                file_name=name,
                status=result.status,
                reason=result.reason,
                image_id=result.image_id,
                mask_version=result.mask_version,
            )
        )
    stored = sum(item.status == "stored" for item in items)
    result = ImageUploadResult(
        items=items,
        stored=stored,
        duplicate=sum(item.status == "duplicate" for item in items),
        rejected=sum(item.status == "rejected" for item in items),
        unmatched_labels=unmatched,
        sam_embed=_embed_head(session, settings, project_id, user) if stored else None,
    )
    if result.rejected == len(items):
        # Nothing stored and nothing already there: the request as a whole failed, with each file's reason, and
        # a 200 would tell a client (or a fuzzer following the answer's image ids) that images now exist.
        reasons = "; ".join(f"{item.file_name}: {item.reason}" for item in items)
        refused = InvalidInput(f"no image stored, every file was rejected: {reasons[:2000]}")
        refused.extra = result.model_dump(mode="json")
        raise refused
    return result


def _embed_head(session: Session, settings: Settings, project_id: int, user: User) -> SamEmbedAhead | None:
    """The queue's head gets its SAM embeddings queued, as after an import job. The images are committed first, so
    nothing that goes wrong here (a broker that refuses: said in the answer) takes the upload back."""
    if settings.sam_queue_head <= 0:
        return None
    session.commit()
    try:
        answer = queue_head_embeddings(session, settings, project_id, created_by=user.id)
    except Exception as error:  # the database or the SAM configuration: said, never failing the upload
        session.rollback()
        log.warning("project %s: embeddings of the queue's head not queued after an upload: %s", project_id, error)
        answer = {"images": [], "jobs": [], "error": f"{type(error).__name__}: {error}"}
    return SamEmbedAhead(**answer)


@router.get("")
def list_images(
    project_id: PathId,
    session: SessionDep,
    _user: Annotated[User, Depends(require("image.read"))],
    status: ImageStatus | None = None,
    split: Split | None = None,
    has_label: Annotated[bool | None, Query(description="Has any mask version (human, SAM or model)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> ImagePage:
    get_project(session, project_id)
    listing = store.list_images(
        session, project_id, status=status, split=split, has_label=has_label, limit=limit, offset=offset
    )
    confidences = model_confidences(session, [image.id for image in listing.images])
    return ImagePage(
        items=[
            image_public(image, listing.latest_versions.get(image.id), confidences.get(image.id))
            for image in listing.images
        ],
        total=listing.total,
        limit=limit,
        offset=offset,
    )


@router.get("/{image_id}")
def get_image(
    project_id: PathId, image_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("image.read"))]
) -> ImagePublic:
    image = store.get_image(session, project_id, image_id)
    latest = latest_mask_version(session, image.id)
    return image_public(image, latest.version if latest else None, model_confidence(session, image.id))


def _cached(request: Request, etag: str, content: bytes, media_type: str, **headers: str) -> Response:
    # An image's bytes never change once stored, so its URL may be cached for good (per user: auth).
    cache = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable", **headers}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=cache)
    return Response(content, media_type=media_type, headers=cache)


@router.get("/{image_id}/file", response_class=Response, responses={200: {"content": {"image/*": {}}}, **NOT_MODIFIED})
def get_image_file(
    project_id: PathId,
    image_id: PathId,
    request: Request,
    session: SessionDep,
    _user: Annotated[User, Depends(require("image.read"))],
) -> Response:
    image = store.get_image(session, project_id, image_id)
    data = store.image_bytes(session, image)
    disposition = f"inline; filename*=UTF-8''{quote(image.file_name, safe='')}"
    return _cached(
        request, f'"{image.sha256}"', data, store.MEDIA_TYPES[image.format], **{"Content-Disposition": disposition}
    )


@router.get(
    "/{image_id}/thumbnail", response_class=Response, responses={200: {"content": {"image/png": {}}}, **NOT_MODIFIED}
)
def get_thumbnail(
    project_id: PathId,
    image_id: PathId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _user: Annotated[User, Depends(require("image.read"))],
    max_side: Annotated[int, Query(ge=16, le=2048, description="Longest side of the thumbnail")] = 256,
) -> Response:
    image = store.get_image(session, project_id, image_id)
    etag = f'"{image.sha256[:32]}-{max_side}"'
    if request.headers.get("if-none-match") == etag:
        return _cached(request, etag, b"", "image/png")
    png = store.cached_thumbnail_png(
        settings.data_dir / "thumbnails", image.sha256, max_side, lambda: store.image_bytes(session, image)
    )
    return _cached(request, etag, png, "image/png")
