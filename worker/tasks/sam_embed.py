"""The `sam_embed` job: one image's float16 SAM embedding into the cache (skipped when already there), and
the `sam_auto_masks` job: automatic masks of a project's labeled images, one AMG JSON per image for SAM-Mix."""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select

from ml.sam.auto_masks import AutoMaskParams, automatic_masks
from ml.sam.backends import sam_backend
from ml.sam.interface import Embedding, SamBackend
from server.db import session_scope
from server.models import Image, MaskVersion
from server.sam import auto_masks_dir, embedding_cache, served_model
from server.settings import Settings
from server.store.images import image_bytes
from worker.context import JobContext


def backend_for(settings: Settings) -> SamBackend:
    return sam_backend(
        settings.resolved_model_dir, settings.sam_threads, settings.sam_checkpoint, settings.sam_checkpoint_type
    )


def rgb_array(data: bytes) -> np.ndarray:
    picture = PILImage.open(io.BytesIO(data))
    if picture.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(picture, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
        picture = PILImage.fromarray(scaled.astype(np.uint8), "L")
    return np.asarray(picture.convert("RGB"))


def _load_image(settings: Settings, image_id: int) -> tuple[str, np.ndarray]:
    with session_scope(settings.resolved_database_url) as session:
        image = session.get(Image, image_id)
        if image is None:
            raise LookupError(f"image {image_id} no longer exists")
        return image.sha256, rgb_array(image_bytes(session, image))


def embedding_of(settings: Settings, backend: SamBackend, image_id: int) -> tuple[Embedding, bool]:
    """The cached embedding, or a new one put in the cache; and whether it had to be computed."""
    cache = embedding_cache(settings)
    with session_scope(settings.resolved_database_url) as session:
        image = session.get(Image, image_id)
        if image is None:
            raise LookupError(f"image {image_id} no longer exists")
        sha = image.sha256
    hit = cache.get(backend.model_id, sha)
    if hit is not None:
        return hit.embedding(), False
    _sha, pixels = _load_image(settings, image_id)
    return cache.put(sha, backend.encode(pixels)).embedding(), True


def run_sam_embed(ctx: JobContext) -> dict[str, Any]:
    image_id = int(ctx.params["image_id"])
    wanted = ctx.params.get("model")
    if wanted != served_model(ctx.settings):
        raise ValueError(f"this job asks for SAM model {wanted!r}; this worker serves {served_model(ctx.settings)!r}")
    started = time.perf_counter()
    _embedding, computed = embedding_of(ctx.settings, backend_for(ctx.settings), image_id)
    return {"image_id": image_id, "model": wanted, "computed": computed, "ms": (time.perf_counter() - started) * 1e3}


def _labeled_image_ids(settings: Settings, project_id: int) -> list[int]:
    with session_scope(settings.resolved_database_url) as session:
        labeled = select(MaskVersion.image_id).distinct()
        return list(
            session.scalars(
                select(Image.id).where(Image.project_id == project_id, Image.id.in_(labeled)).order_by(Image.id)
            )
        )


def run_sam_auto_masks(ctx: JobContext) -> dict[str, Any]:
    assert ctx.project_id is not None
    params = AutoMaskParams(points_per_side=int(ctx.params.get("points_per_side", AutoMaskParams.points_per_side)))
    image_ids = ctx.params.get("image_ids") or _labeled_image_ids(ctx.settings, ctx.project_id)
    folder = auto_masks_dir(ctx.settings, ctx.project_id)
    folder.mkdir(parents=True, exist_ok=True)
    backend = backend_for(ctx.settings)
    ctx.result = {"images": len(image_ids), "done": 0, "masks": 0, "folder_key": f"sam/auto_masks/{ctx.project_id}"}
    for index, image_id in enumerate(image_ids):
        embedding, _computed = embedding_of(ctx.settings, backend, int(image_id))

        def report(fraction: float, index: int = index) -> None:
            ctx.progress((index + fraction) / len(image_ids), f"image {index + 1} of {len(image_ids)}")

        records = automatic_masks(backend, embedding, params, report)
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".partial-")
        with os.fdopen(handle, "w") as out:
            json.dump(records, out)
        os.replace(temp, folder / f"{image_id}.json")
        ctx.result["done"] += 1
        ctx.result["masks"] += len(records)
        ctx.progress((index + 1) / len(image_ids), f"{index + 1} of {len(image_ids)} images")
    return ctx.result
