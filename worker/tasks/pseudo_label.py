"""The `pseudo_label` job: a model version predicts every image of the project without a human label, and
each prediction is stored as a mask version of source `model` with its confidence: the mean top class
probability on the version, and the per-pixel top probability as an 8-bit PNG beside it (server.store.confidence).

Pixels whose top class probability is below the threshold become ignore (255): the S5Mars rule of labelling
only what the model is sure of; threshold 0 keeps every pixel. Human labels are never replaced: an image that
gets one while the job runs is skipped. An image an annotator holds a live claim on is skipped too (their open
edit is never put under a model mask) and picked up by a later run. Images are committed in chunks, so a
cancel keeps finished chunks and a re-run skips images that already have a mask from this model version.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from ml.pseudo import pseudo_label
from ml.sam.models import sha256_of
from server.db import session_scope
from server.models import Image, ImageStatus, MaskSource, ModelVersion
from server.store.confidence import add_confidence_map, confidence_png
from server.store.errors import Conflict
from server.store.masks import add_mask_version, latest_mask_version
from server.store.pseudo_labels import is_claimed_now, pseudo_label_targets
from worker.context import JobContext
from worker.project_data import ProjectSource

CHUNK = 32  # images per commit


def _png(label: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(label, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def run_pseudo_labels(ctx: JobContext) -> dict[str, Any]:
    url = ctx.settings.resolved_database_url
    model_version_id = int(ctx.params["model_version_id"])
    threshold = float(ctx.params.get("threshold", 0.0))
    batch_size = int(ctx.params.get("batch_size", 8))
    with session_scope(url) as session:
        version = session.get(ModelVersion, model_version_id)
        if version is None or version.project_id != ctx.project_id:
            raise LookupError(f"model version {model_version_id} of project {ctx.project_id} no longer exists")
        artifact, expected = Path(version.artifact_path), version.artifact_sha256
    if not artifact.is_file():
        raise FileNotFoundError(f"the weights of model version {model_version_id} are missing: {artifact}")
    if sha256_of(artifact) != expected:
        raise ValueError(f"the weights of model version {model_version_id} ({artifact}) do not match their sha256")

    from ml.predict import load_predictor

    predictor = load_predictor(artifact, device="auto", batch_size=batch_size)
    with session_scope(url) as session:
        targets = pseudo_label_targets(session, ctx.project_id, model_version_id)  # type: ignore[arg-type]
    source = ProjectSource(url, targets, with_labels=False)
    result: dict[str, Any] = {
        "model_version_id": model_version_id,
        "threshold": threshold,
        "total": len(targets),
        "stored": 0,
        "skipped_human": 0,
        "skipped_claimed": 0,
        "mean_confidence": None,
    }
    ctx.result = result
    ctx.progress(0.0, f"pseudo-labelling {len(targets)} images with model version {model_version_id}")
    confidences: list[float] = []
    import torch

    for start in range(0, len(targets), CHUNK):
        chunk = targets[start : start + CHUNK]
        predictions: list[tuple[int, np.ndarray, float, bytes]] = []
        by_shape: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for image_id in chunk:
            image = source.load_image(str(image_id))
            by_shape.setdefault(image.shape, []).append((image_id, image))
        with torch.inference_mode():
            for group in by_shape.values():  # one forward pass per size, batch_size at a time
                for first in range(0, len(group), batch_size):
                    part = group[first : first + batch_size]
                    probs = predictor.predict_proba(np.stack([image for _, image in part]))
                    for (image_id, _), image_probs in zip(part, probs, strict=True):
                        label, confidence = pseudo_label(image_probs, threshold)
                        top = confidence_png(image_probs.max(axis=0))
                        predictions.append((image_id, label, confidence, top))
        stored, skipped, claimed = 0, 0, 0
        with session_scope(url) as session:
            for image_id, label, confidence, top in predictions:
                image_row = session.get(Image, image_id)
                if image_row is None or image_row.status == ImageStatus.labeled:
                    skipped += 1
                    continue
                if is_claimed_now(session, image_id):  # an annotator has it open: a later run labels it
                    claimed += 1
                    continue
                latest = latest_mask_version(session, image_id)
                try:
                    version = add_mask_version(
                        session,
                        image_row,
                        _png(label),
                        source=MaskSource.model,
                        base_version=latest.version if latest else None,
                        model_version_id=model_version_id,
                        confidence=confidence,
                    )
                except Conflict:  # a human label (or another mask) arrived meanwhile: theirs wins
                    skipped += 1
                    continue
                add_confidence_map(session, version, top)
                stored += 1
                confidences.append(confidence)
        # Counted once the chunk is committed, so the result never claims what a rollback undid.
        result["stored"] += stored
        result["skipped_human"] += skipped
        result["skipped_claimed"] += claimed
        result["mean_confidence"] = float(np.mean(confidences)) if confidences else None
        done = start + len(chunk)
        ctx.progress(
            done / max(len(targets), 1),
            f"{done} of {len(targets)} images: {result['stored']} stored, {result['skipped_claimed']} claimed skipped",
        )
    return result
