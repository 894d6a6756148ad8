"""The `round` job: train on every human label plus the unlabelled pool, score the pool, rank it, and record
the model version, the scores and the round's end in one transaction.

Nothing is half-made: the model version and the scores appear together, after training and scoring ended.
A re-delivered job (its worker died) resumes training from its checkpoint; a cancelled or failed one
deletes that checkpoint. A round whose model version exists already (its worker died after the commit)
returns it instead of training again.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select

from ml.interfaces import Cancelled, ProgressFn
from ml.profiles import profile_train_config
from ml.sam.models import sha256_of
from server.db import session_scope
from server.models import ModelVersion, Project, Round, Score
from worker.context import JobContext
from worker.project_data import ProjectSource, ProjectSplit, project_split

TRAIN_SHARE, SCORE_SHARE = 0.8, 0.18  # of the job's progress; the rest is ranking and storing


def _span(progress: ProgressFn, low: float, high: float, phase: str) -> ProgressFn:
    def report(fraction: float, message: str) -> None:
        progress(low + (high - low) * fraction, f"{phase}: {message}")

    return report


def ranking(scores: dict[str, float]) -> list[tuple[int, float, int]]:
    """(image id, score, rank) with rank 1 = label first: highest score first, NaN last, ties by image id."""

    def key(item: tuple[str, float]) -> tuple[float, int]:
        value = item[1]
        return (math.inf if math.isnan(value) else -value, int(item[0]))

    ordered = sorted(scores.items(), key=key)
    return [(int(i), float(s), rank) for rank, (i, s) in enumerate(ordered, start=1)]


def _score(
    ctx: JobContext, params: dict[str, Any], checkpoint: Path, split: ProjectSplit, progress: ProgressFn, seed: int
) -> tuple[dict[str, float], dict[str, Any]]:
    from ml.selection import get_strategy

    strategy = get_strategy(params["strategy"])
    if not split.unlabeled:
        return {}, {"scored": 0, "seconds": 0.0}
    if strategy.scorer is None:  # random: a seeded shuffle of the pool, as scores
        values = np.random.default_rng(seed).random(len(split.unlabeled))
        return {str(i): float(v) for i, v in zip(split.unlabeled, values, strict=True)}, {
            "scored": len(split.unlabeled),
            "seconds": 0.0,
        }
    from ml.predict import load_predictor
    from ml.scoring import score_pool_detailed

    predictor = load_predictor(checkpoint, device="auto", batch_size=int(params.get("score_batch_size", 8)))
    source = ProjectSource(ctx.settings.resolved_database_url, split.unlabeled, with_labels=False)
    result = score_pool_detailed(
        predictor, source, strategy.scorer, batch_size=int(params.get("score_batch_size", 8)), progress=progress
    )
    return result.scores, {
        "scored": len(result.scores),
        "seconds": result.seconds,
        "images_per_second": result.images_per_second,
    }


def run_round(ctx: JobContext) -> dict[str, Any]:
    url = ctx.settings.resolved_database_url
    round_id = int(ctx.params["round_id"])
    with session_scope(url) as session:
        row = session.get(Round, round_id)
        if row is None:
            raise LookupError(f"round {round_id} no longer exists")
        done = session.scalar(select(ModelVersion).where(ModelVersion.round_id == round_id))
        if done is not None:
            return {"round_id": round_id, "model_version_id": done.id, "note": "recorded by an earlier attempt"}
        project = session.get(Project, row.project_id)
        assert project is not None
        project_id, index, params = project.id, row.index, dict(row.params)
        classes = [{"id": c["id"], "name": c["name"]} for c in project.classes]

    seed = int(params.get("seed", 0))
    split = project_split(url, project_id, seed)
    if not split.labeled:
        raise RuntimeError(f"project {project_id} has no human-labelled pool image to train on")
    config = profile_train_config(
        params["method"],
        params.get("profile", "cpu"),
        len(classes),
        seed=seed,
        steps=params.get("steps"),
        crop_size=params.get("crop_size"),
        decoder_dropout=params["strategy"] == "bald",
        encoder=params.get("encoder"),
    )
    training_dir = ctx.settings.artifacts_dir / "training"
    checkpoint = training_dir / f"job-{ctx.job_id}.pt"
    ctx.result = {"round_id": round_id, "phase": "training", "labeled": len(split.labeled)}
    ctx.progress(0.0, f"training {config.method} on {len(split.labeled)} labelled + {len(split.unlabeled)} pool images")
    try:
        from ml.ssl import train

        started = time.perf_counter()
        result = train(
            config,
            ProjectSource(url, split.labeled, with_labels=True),
            ProjectSource(url, split.unlabeled, with_labels=False),
            ProjectSource(url, split.val, with_labels=True) if split.val else None,
            checkpoint_path=checkpoint,
            progress=_span(ctx.progress, 0.0, TRAIN_SHARE, "training"),
            resume=True,
        )
        train_seconds = time.perf_counter() - started
        ctx.result["phase"] = "scoring"
        scores, scoring = _score(
            ctx,
            params,
            checkpoint,
            split,
            _span(ctx.progress, TRAIN_SHARE, TRAIN_SHARE + SCORE_SHARE, "scoring"),
            seed * 1_009 + index,
        )
        ctx.progress(TRAIN_SHARE + SCORE_SHARE, f"ranking {len(scores)} pool images")
        started = time.perf_counter()
        ranked = ranking(scores)
        rank_seconds = time.perf_counter() - started
    except (Cancelled, Exception):
        checkpoint.unlink(missing_ok=True)
        raise

    names = {c["id"]: c["name"] for c in classes}
    per_class = {int(k): v for k, v in (result.metrics.get("per_class_iou") or {}).items()}
    metrics = {
        "miou": result.metrics.get("miou"),
        "per_class_iou": {str(k): v for k, v in per_class.items()},
        "per_class_iou_by_name": {names.get(k, str(k)): v for k, v in per_class.items()},
        "validation": {"source": split.val_source, "images": len(split.val), "image_ids": split.val},
        "train_seconds": train_seconds,
        "train_images_per_second": result.images_per_second,
        "score": scoring,
        "rank_seconds": rank_seconds,
    }
    models_dir = ctx.settings.artifacts_dir / "models" / f"project-{project_id}"
    models_dir.mkdir(parents=True, exist_ok=True)
    digest = sha256_of(checkpoint)
    artifact = models_dir / f"round-{index}-{digest[:12]}.pt"
    started = time.perf_counter()
    with session_scope(url) as session:
        version = ModelVersion(
            project_id=project_id,
            round_id=round_id,
            method=config.method,
            config={**asdict(config), "profile": params.get("profile", "cpu"), "strategy": params["strategy"]},
            metrics=metrics,
            labeled_count=len(split.labeled),
            artifact_path=str(artifact.resolve()),
            artifact_sha256=digest,
        )
        session.add(version)
        session.execute(delete(Score).where(Score.round_id == round_id))
        if ranked:
            session.execute(
                insert(Score), [{"round_id": round_id, "image_id": i, "score": s, "rank": r} for i, s, r in ranked]
            )
        row = session.get(Round, round_id)
        assert row is not None
        row.labeled_count = len(split.labeled) + (len(split.val) if split.val_source != "val split" else 0)
        session.flush()
        # Moved in before the commit: a failed commit leaves an unreferenced file, never a row without one.
        os.replace(checkpoint, artifact)
        model_version_id = version.id
    store_seconds = time.perf_counter() - started
    return {
        "round_id": round_id,
        "model_version_id": model_version_id,
        "miou": metrics["miou"],
        "labeled": len(split.labeled),
        "validation": {"source": split.val_source, "images": len(split.val)},
        "scored": len(ranked),
        "seconds": {
            "train": train_seconds,
            "score": scoring["seconds"],
            "rank": rank_seconds,
            "store": store_seconds,
        },
    }
