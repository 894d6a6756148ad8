"""SAM for one image: its cached embedding as raw float16 bytes, and server-side decoding of a prompt.

Embeddings come from `sam_embed` jobs (GPU or CPU workers): a request for one that is not cached yet starts
(or finds) its job and answers 202 with the job, after waiting up to `wait_seconds`; the client polls. The
API never encodes (about 0.7–1.3 s of two CPU cores per image) but does decode, with onnxruntime imported on
the first call: one click costs about 45–70 ms, less than a round trip through a worker queue.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from ml.sam.cache import CachedEmbedding
from server.deps import SessionDep, SettingsDep, require
from server.errors import NOT_MODIFIED, error_responses
from server.job_schemas import JobPublic
from server.jobs import commit_and_send, enqueue_job
from server.models import Image, User
from server.sam import AUTO_MASKS_KIND, embedding_cache, ensure_embeddings, served_model
from server.sam_schemas import SamAutoMasksCreate, SamPending, SamPredictRequest
from server.schemas import PathId
from server.settings import Settings
from server.store.images import get_image
from server.store.projects import get_project

router = APIRouter(tags=["sam"])
IMAGE_SAM = "/projects/{project_id}/images/{image_id}/sam"
POLL_S = 0.1

WaitSeconds = Annotated[float, Query(ge=0, le=10, description="wait this long for a missing embedding, then 202")]


def _check_model(settings: Settings, model: str | None) -> str:
    served = served_model(settings)
    if model is not None and model != served:
        raise HTTPException(409, f"model {model!r} is not served here: this server's SAM model is {served!r}")
    return served


def _cached_or_pending(
    session: Session, settings: Settings, image: Image, user: User, wait_seconds: float
) -> CachedEmbedding | JSONResponse:
    model = served_model(settings)
    cache = embedding_cache(settings)
    hit = cache.get(model, image.sha256)
    if hit is not None:
        return hit
    jobs, new = ensure_embeddings(session, settings, [image], user.id)
    if new:
        commit_and_send(session, settings, new)  # BrokerUnavailable: 503
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        time.sleep(POLL_S)
        hit = cache.get(model, image.sha256)
        if hit is not None:
            return hit
    job = jobs[image.id]
    session.refresh(job)
    pending = SamPending(
        detail=f"the SAM embedding of image {image.id} is being computed by job {job.id}; poll this URL or the job",
        job=JobPublic.model_validate(job),
    )
    return JSONResponse(pending.model_dump(mode="json"), status_code=202, headers={"Retry-After": "1"})


@router.get(
    IMAGE_SAM + "/embedding",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "raw float16 bytes, C order"},
        202: {"model": SamPending, "description": "not cached yet: its job"},
        **NOT_MODIFIED,
        **error_responses(409, 503, s409="`model` names a SAM model this server does not serve"),
    },
    description=(
        "The image's SAM embedding as raw little-endian float16 bytes (2 MiB for 1×256×64×64). Headers: "
        "`X-SAM-Model`, `X-SAM-Shape` (comma-separated), `X-SAM-Dtype`, `X-SAM-Scale` (input pixels per image "
        "pixel), `X-SAM-Original-Size` (height,width). 202 with the `sam_embed` job while it is computed."
    ),
)
def get_embedding(
    project_id: PathId,
    image_id: PathId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("sam.use"))],
    model: Annotated[str | None, Query(max_length=200, description="the model the client decodes with")] = None,
    wait_seconds: WaitSeconds = 0.0,
) -> Response:
    image = get_image(session, project_id, image_id)
    _check_model(settings, model)
    found = _cached_or_pending(session, settings, image, user, wait_seconds)
    if isinstance(found, JSONResponse):
        return found
    meta = found.meta
    etag = f'"{image.sha256[:32]}-{meta["model"]}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=86400",
        "X-SAM-Model": meta["model"],
        "X-SAM-Shape": ",".join(str(n) for n in meta["shape"]),
        "X-SAM-Dtype": meta["dtype"],
        "X-SAM-Scale": repr(float(meta["scale"])),
        "X-SAM-Original-Size": ",".join(str(n) for n in meta["original_size"]),
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(found.raw, media_type="application/octet-stream", headers=headers)


def _mask_input(encoded: str | None) -> np.ndarray | None:
    if encoded is None:
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise HTTPException(422, f"mask_input is not base64: {error}") from error
    if len(raw) != 256 * 256 * 2:
        raise HTTPException(422, f"mask_input must be 256×256 float16 (131072 bytes), got {len(raw)} bytes")
    return np.frombuffer(raw, dtype="<f2").reshape(256, 256).astype(np.float32)


def _png(mask: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(mask.astype(np.uint8) * 255, "L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


@router.post(
    IMAGE_SAM + "/predict",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "application/octet-stream": {}}},
        202: {"model": SamPending, "description": "embedding not cached yet: its job"},
        **error_responses(409, 501, 503, s409="`model` names a SAM model this server does not serve"),
    },
    description=(
        "Decode a prompt (points with labels 1/0, a box, a previous low-res mask) on the server. `output=mask` "
        "(default): a single-channel PNG at the image size, 0 or 255; `output=low_res`: the 256×256 float16 "
        "logits to send back as `mask_input`. Headers `X-SAM-Score` (predicted IoU) and `X-SAM-Model`."
    ),
)
def predict(
    project_id: PathId,
    image_id: PathId,
    body: SamPredictRequest,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("sam.use"))],
    output: Annotated[str, Query(pattern="^(mask|low_res)$")] = "mask",
    wait_seconds: WaitSeconds = 0.0,
) -> Response:
    from ml.sam.interface import Prompt, PromptError, check_prompt

    image = get_image(session, project_id, image_id)
    served = _check_model(settings, body.model)
    if settings.sam_checkpoint is not None:
        # Decoding official-checkpoint embeddings needs torch, which the API process never loads.
        raise HTTPException(501, "server-side decoding serves the ONNX model only; this deployment uses a checkpoint")
    prompt = Prompt(list(body.points), list(body.labels), body.box, _mask_input(body.mask_input))
    try:
        check_prompt(prompt, (image.height, image.width))  # before any job: a bad prompt starts nothing
    except PromptError as error:
        raise HTTPException(422, str(error)) from error
    found = _cached_or_pending(session, settings, image, user, wait_seconds)
    if isinstance(found, JSONResponse):
        return found
    from ml.sam.backends import sam_backend
    from ml.sam.models import ModelFilesError

    try:
        backend = sam_backend(settings.resolved_model_dir, settings.sam_threads)
    except ModelFilesError as error:
        raise HTTPException(503, str(error)) from error
    try:
        prediction = backend.decode(found.embedding(), prompt)
    except PromptError as error:
        raise HTTPException(422, str(error)) from error
    headers = {"X-SAM-Score": f"{prediction.score:.6f}", "X-SAM-Model": served}
    if output == "low_res":
        headers["X-SAM-Shape"] = "256,256"
        return Response(
            prediction.low_res_logits.astype("<f2").tobytes(), media_type="application/octet-stream", headers=headers
        )
    return Response(_png(prediction.mask), media_type="image/png", headers=headers)


@router.post(
    "/projects/{project_id}/sam/auto-masks", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(503)
)
def start_auto_masks(
    project_id: PathId,
    body: SamAutoMasksCreate,
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("round.start"))],
) -> JobPublic:
    """Automatic masks of the project's labeled images (or of `image_ids`), stored as SAM-Mix candidates."""
    get_project(session, project_id)
    for image_id in body.image_ids or []:
        get_image(session, project_id, image_id)
    job = enqueue_job(
        session,
        settings,
        kind=AUTO_MASKS_KIND,
        project_id=project_id,
        params={"image_ids": body.image_ids, "points_per_side": body.points_per_side},
        created_by=user.id,
    )
    return JobPublic.model_validate(job)
