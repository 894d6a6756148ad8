"""The `round` job: train on every human label plus the unlabelled pool, score the pool, rank it, and record
the model version, the scores and the round's end in one transaction.

Nothing is half-made: the model version and the scores appear together, after training and scoring ended.
A re-delivered job (its worker died) resumes training from its checkpoint; a cancelled or failed one
deletes that checkpoint. A round whose model version exists already (its worker died after the commit)
returns it instead of training again. Once recorded, the head of the new ranking gets its SAM embeddings queued.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from ml.al_round import RoundSettings, SelfTrainingSettings
from ml.al_round import run_round as run_al_round
from ml.interfaces import Cancelled
from ml.profiles import WARM_START_DEFAULT
from ml.sam.models import sha256_of
from server.db import session_scope
from server.models import ModelVersion, Project, Round, Score
from worker.context import JobContext
from worker.project_data import ProjectSource, job_round, project_split
from worker.sam_ahead import embed_head


def round_settings(params: dict[str, Any], index: int) -> RoundSettings:
    """The round's ml settings from its stored request parameters (server/round_schemas.RoundCreate)."""
    st = params.get("self_training")
    return RoundSettings(
        method=params["method"],
        strategy=params["strategy"],
        profile=params.get("profile", "cpu"),
        seed=int(params.get("seed", 0)),
        index=index,
        steps=params.get("steps"),
        crop_size=params.get("crop_size"),
        encoder=params.get("encoder"),
        score_batch_size=int(params.get("score_batch_size", 8)),
        self_training=SelfTrainingSettings(
            threshold=float(st.get("threshold", 0.9)),
            class_keep=st.get("class_keep"),
            steps=st.get("steps"),
            teacher=st.get("teacher"),  # None: the profile's
            encoder=st.get("encoder"),  # None: the round's, else the profile's
        )
        if st
        else None,
    )


def _trained_models(version: ModelVersion) -> list[tuple[str, str | None, str]]:
    """(method, encoder, artifact path) of each model a round stored: its model version and, for a self-trained
    round, the method's own model that ranked the pool (`metrics.method_model`)."""
    models = [(version.method, version.config.get("encoder"), version.artifact_path)]
    method_model = (version.metrics or {}).get("method_model")
    if method_model:
        models.append((method_model["method"], method_model.get("encoder"), method_model["artifact_path"]))
    return models


def _warm_start_from(url: str, project_id: int, settings: RoundSettings, params: dict[str, Any]) -> Path | None:
    """The project's latest model of the same method (and encoder), when the round warm-starts. A self-trained
    round's student is never one: the next round starts from that round's method model, as in the simulator
    (`RoundResult.warm_start_source`)."""
    warm = params.get("warm_start")
    if not (WARM_START_DEFAULT[settings.profile] if warm is None else warm):
        return None
    with session_scope(url) as session:
        versions = session.scalars(
            select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(ModelVersion.id.desc())
        ).all()
        for version in versions:
            for method, encoder, path in _trained_models(version):
                same_encoder = settings.encoder is None or encoder == settings.encoder
                if method == settings.method and same_encoder and Path(path).is_file():
                    return Path(path)
    return None


def run_round(ctx: JobContext) -> dict[str, Any]:
    url = ctx.settings.resolved_database_url
    round_id = int(ctx.params["round_id"])
    with session_scope(url) as session:
        row = job_round(session, round_id)
        done = session.scalar(select(ModelVersion).where(ModelVersion.round_id == round_id))
        if done is not None:
            return {"round_id": round_id, "model_version_id": done.id, "note": "recorded by an earlier attempt"}
        project = session.get(Project, row.project_id)
        assert project is not None
        project_id, index, params = project.id, row.index, dict(row.params)
        classes = [{"id": c["id"], "name": c["name"]} for c in project.classes]

    settings = round_settings(params, index)
    split = project_split(url, project_id, settings.seed, accepted_only=bool(params.get("accepted_only")))
    if not split.labeled:
        raise RuntimeError(f"project {project_id} has no human-labelled pool image to train on")
    init_from = _warm_start_from(url, project_id, settings, params)
    workdir = ctx.settings.artifacts_dir / "training" / f"job-{ctx.job_id}"
    ctx.result = {"round_id": round_id, "labeled": len(split.labeled), "warm_start": init_from is not None}
    ctx.progress(0.0, f"round: {settings.method} on {len(split.labeled)} labelled + {len(split.unlabeled)} pool images")
    try:
        result = run_al_round(
            settings,
            labeled=ProjectSource(url, split.labeled, with_labels=True),
            pool=ProjectSource(url, split.unlabeled, with_labels=False),
            unlabeled=[str(i) for i in split.unlabeled],
            val=ProjectSource(url, split.val, with_labels=True) if split.val else None,
            num_classes=len(classes),
            workdir=workdir,
            init_from=init_from,
            class_names={c["id"]: c["name"] for c in classes},
            progress=ctx.progress,
        )
        started = time.perf_counter()
        ranked = result.ranked()
        rank_seconds = time.perf_counter() - started
    except (Cancelled, Exception):
        shutil.rmtree(workdir, ignore_errors=True)
        raise

    names = {c["id"]: c["name"] for c in classes}
    evaluation = result.evaluation or {}
    per_class = {int(k): v for k, v in (evaluation.get("per_class_iou") or {}).items()}
    metrics = {
        "miou": evaluation.get("miou"),
        "per_class_iou": {str(k): v for k, v in per_class.items()},
        "per_class_iou_by_name": {names.get(k, str(k)): v for k, v in per_class.items()},
        "validation": {"source": split.val_source, "images": len(split.val), "image_ids": split.val},
        "train_seconds": result.train_seconds,
        "seconds": result.seconds,
        "score": result.score_info,
        "pseudo_labels": result.pseudo_info,
        "warm_start_from": str(init_from) if init_from else None,
        "rank_seconds": rank_seconds,
    }
    checkpoint = result.checkpoint
    config = asdict(result.model_config)
    models_dir = ctx.settings.artifacts_dir / "models" / f"project-{project_id}"
    models_dir.mkdir(parents=True, exist_ok=True)
    digest = sha256_of(checkpoint)
    artifact = models_dir / f"round-{index}-{digest[:12]}.pt"
    # A self-trained round keeps its method's model too: the next round of that method warm-starts from it.
    method_model = result.method_checkpoint if result.method_checkpoint != checkpoint else None
    method_artifact: Path | None = None
    if method_model is not None:
        method_digest = sha256_of(method_model)
        method_artifact = models_dir / f"round-{index}-{result.train_config.method}-{method_digest[:12]}.pt"
        metrics["method_model"] = {
            "method": result.train_config.method,
            "encoder": result.train_config.encoder,
            "artifact_path": str(method_artifact.resolve()),
            "artifact_sha256": method_digest,
        }
    started = time.perf_counter()
    with session_scope(url) as session:
        version = ModelVersion(
            project_id=project_id,
            round_id=round_id,
            method=config["method"],
            config={**config, "profile": settings.profile, "strategy": settings.strategy},
            metrics=metrics,
            labeled_count=len(split.labeled),
            artifact_path=str(artifact.resolve()),
            artifact_sha256=digest,
        )
        session.add(version)
        session.execute(delete(Score).where(Score.round_id == round_id))
        if ranked:
            session.execute(
                insert(Score),
                [{"round_id": round_id, "image_id": int(i), "score": s, "rank": r} for i, s, r in ranked],
            )
        row = session.get(Round, round_id)
        assert row is not None
        row.labeled_count = len(split.labeled) + (len(split.val) if split.val_source != "val split" else 0)
        session.flush()
        # Moved in before the commit: a failed commit leaves an unreferenced file, never a row without one.
        os.replace(checkpoint, artifact)
        if method_model is not None and method_artifact is not None:
            os.replace(method_model, method_artifact)
        model_version_id = version.id
    shutil.rmtree(workdir, ignore_errors=True)
    store_seconds = time.perf_counter() - started
    # The new ranking's head gets its SAM embeddings now, before the first annotator asks for it.
    embedded = embed_head(ctx, project_id, round_id)
    return {
        "sam_embed": embedded,
        "round_id": round_id,
        "model_version_id": model_version_id,
        "miou": metrics["miou"],
        "labeled": len(split.labeled),
        "validation": {"source": split.val_source, "images": len(split.val)},
        "scored": len(ranked),
        "warm_start": init_from is not None,
        "seconds": {**result.seconds, "rank": rank_seconds, "store": store_seconds},
    }
