"""One active-learning round: train → score the unlabelled pool and rank → (self-train) → evaluate.

The only round there is: `marslabel simulate` (ml.simulate) calls it with a folder dataset whose labels are the
oracle, and the service's `round` job (worker/tasks/round.py) with the project's database; neither has a
training, scoring or ranking loop of its own. Everything a round writes goes under its `workdir`:

    workdir/train.pt     the method's model (resumable while training)
    workdir/predictions/          the teacher's class and confidence per pool pixel (self-training; resumable)
    workdir/student-<key>.pt      the self-trained student (key: its settings), which is then the round's model

A rerun with the same workdir resumes: finished checkpoints are returned as they are.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml.interfaces import ProgressFn, SampleSource, TrainConfig, no_progress
from ml.profiles import profile_self_training, profile_train_config, profile_value
from ml.selection import SPREAD_FACTOR, get_strategy, id_key, ranking, spread_picks


@dataclass
class SelfTrainingSettings:
    """The final model's self-training: the round's model is the teacher of a student trained on the human
    labels plus the teacher's pseudo-labels of the pool (pixels under `threshold` confidence ignored)."""

    threshold: float = 0.9
    class_keep: float | None = None  # per-class thresholds keeping at least this share of each class (CBST)
    steps: int | None = None  # None: the profile's
    crop_size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RoundSettings:
    method: str = "cps-mars"
    strategy: str = "ueq"
    profile: str = "cpu"
    seed: int = 0
    index: int = 0  # the round's number in its project or run; seeds `random` and the training
    steps: int | None = None  # None: the profile's (the warm fraction of it when warm-started)
    warm_steps: int | None = None
    crop_size: int | None = None
    encoder: str | None = None
    device: str = "auto"
    train_options: dict[str, Any] = field(default_factory=dict)
    score_size: int | None = -1  # side the pool is resized to for scoring; None = native; -1 = the profile's
    score_batch_size: int = 8
    candidates: int | None = None  # score a seeded random subset of this many unlabelled images; None = all
    top_k_percent: float | None = None
    exclude_class: int | None = None
    class_ids: tuple[int, ...] | None = None  # classes of the val mIoU; None = those present in the val labels
    self_training: SelfTrainingSettings | None = None
    # The first `spread` of the ranking are spread over kinds of scene (ml.selection.spread_picks over ImageNet
    # encoder features of the top SPREAD_FACTOR·spread); None: the ranking is by score alone.
    spread: int | None = None


@dataclass
class RoundResult:
    checkpoint: Path  # the round's model: the student when self-training, else the trained model
    teacher_checkpoint: Path | None
    train_config: TrainConfig  # the method's training run
    model_config: TrainConfig  # the run that made `checkpoint`: the student's when self-training
    trainer_metrics: dict[str, Any]
    evaluation: dict[str, Any] | None  # None without a validation source
    scores: dict[str, float]  # every scored unlabelled image
    seconds: dict[str, float]
    score_info: dict[str, Any]
    pseudo_info: dict[str, Any] | None = None
    first: list[str] = field(default_factory=list)  # ranked before all others (the spread batch), in this order

    @property
    def warm_start_source(self) -> Path:
        """What the next round of the same method starts from: the method's model, never the student."""
        return self.teacher_checkpoint or self.checkpoint

    def ranked(self) -> list[tuple[str, float, int]]:
        ordered = ranking(self.scores)
        if not self.first:
            return ordered
        head = {i: n for n, i in enumerate(self.first)}
        ordered.sort(key=lambda item: (0, head[item[0]]) if item[0] in head else (1, item[2]))
        return [(i, value, rank) for rank, (i, value, _) in enumerate(ordered, start=1)]

    def picks(self, size: int) -> list[str]:
        return [i for i, _, _ in self.ranked()[:size]]


def round_seed(seed: int, round_index: int, salt: int = 0) -> int:
    return seed * 100_003 + round_index * 1_009 + salt


def train_config(settings: RoundSettings, num_classes: int, warm: bool) -> TrainConfig:
    return profile_train_config(
        settings.method,
        settings.profile,
        num_classes,
        seed=settings.seed,
        steps=settings.steps,
        crop_size=settings.crop_size,
        warm=warm,
        warm_steps=settings.warm_steps,
        decoder_dropout=settings.strategy == "bald",
        device=settings.device,
        encoder=settings.encoder,
        options=settings.train_options,
    )


def student_config(settings: RoundSettings, num_classes: int) -> TrainConfig:
    assert settings.self_training is not None
    st = settings.self_training
    return profile_self_training(
        settings.profile,
        num_classes,
        seed=settings.seed,
        steps=st.steps,
        crop_size=st.crop_size,
        device=settings.device,
        encoder=settings.encoder,
        options=st.options,
    )


def _span(progress: ProgressFn, low: float, high: float, phase: str) -> ProgressFn:
    def report(fraction: float, message: str) -> None:
        progress(low + (high - low) * fraction, f"{phase}: {message}")

    return report


def _train(
    config: TrainConfig,
    labeled: SampleSource,
    unlabeled: SampleSource | None,
    path: Path,
    init_from: Path | None,
    progress: ProgressFn,
) -> tuple[Path, float, dict[str, Any]]:
    from ml import ssl

    result = ssl.train(
        config, labeled, unlabeled, None, checkpoint_path=path, progress=progress, resume=True, init_from=init_from
    )
    # The steps' own time, summed over every attempt (a resumed or already finished run included).
    seconds = sum(float(r.get("seconds", 0.0)) for r in result.history if "loss" in r)
    return Path(result.checkpoint), seconds, dict(result.metrics)


def evaluate(
    checkpoint: Path,
    val: SampleSource,
    *,
    class_ids: Sequence[int] | None = None,
    class_names: Mapping[int, str] | None = None,
    device: str = "auto",
    batch_size: int = 8,
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Dataset-level IoU of a checkpoint on a labelled source; `miou_without_rock` where a class is named rock."""
    from ml.metrics import evaluate_predictor, miou_from_confusion
    from ml.predict import load_predictor

    predictor = load_predictor(checkpoint, device=device, batch_size=batch_size)
    result = evaluate_predictor(predictor, val, batch_size=batch_size, class_ids=class_ids, progress=progress)
    cm = np.asarray(result["confusion"])
    used = list(class_ids) if class_ids is not None else [int(c) for c in np.flatnonzero(cm.sum(axis=1) > 0)]
    names = dict(class_names or {})
    rock = [c for c in used if names.get(c) == "rock"]
    if rock and len(used) > 1:
        result["miou_without_rock"] = miou_from_confusion(cm, [c for c in used if c not in rock])[0]
    result["class_ids"] = used
    result["per_class_iou"] = {str(k): v for k, v in result["per_class_iou"].items()}
    result["class_names"] = {str(k): names.get(k, str(k)) for k in used}
    return result


def score(
    settings: RoundSettings,
    checkpoint: Path,
    pool: SampleSource,
    unlabeled: Sequence[str],
    labeled: SampleSource,
    num_classes: int,
    progress: ProgressFn = no_progress,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Scores of the unlabelled images (higher = label first) under the round's strategy."""
    spec = get_strategy(settings.strategy)
    candidates = sorted(unlabeled, key=id_key)
    if settings.candidates is not None and settings.candidates < len(candidates):
        rng = np.random.default_rng(round_seed(settings.seed, settings.index, salt=13))
        candidates = sorted(
            (candidates[i] for i in rng.choice(len(candidates), settings.candidates, False)), key=id_key
        )
    if not candidates:
        return {}, {"scored": 0, "seconds": 0.0}
    if spec.scorer is None:  # random: a seeded shuffle, as scores
        values = np.random.default_rng(round_seed(settings.seed, settings.index, salt=7)).random(len(candidates))
        return dict(zip(candidates, map(float, values), strict=True)), {"scored": len(candidates), "seconds": 0.0}
    from ml.data import label_pixel_counts
    from ml.losses import enet_class_weights
    from ml.predict import load_predictor
    from ml.scoring import ScoreOptions, get_scorer, score_pool_detailed

    weights = None
    if get_scorer(spec.scorer).rare_class:
        weights = tuple(float(w) for w in enet_class_weights(label_pixel_counts(labeled, num_classes)))
    options = ScoreOptions(
        top_k_percent=settings.top_k_percent, exclude_class=settings.exclude_class, class_weights=weights
    )
    size = profile_value(settings.profile, "score_size") if settings.score_size == -1 else settings.score_size
    predictor = load_predictor(checkpoint, device=settings.device, batch_size=settings.score_batch_size)
    result = score_pool_detailed(
        predictor,
        pool,
        spec.scorer,
        ids=candidates,
        batch_size=settings.score_batch_size,
        progress=progress,
        options=options,
        image_size=size,
    )
    return result.scores, {
        "scored": len(result.scores),
        "seconds": result.seconds,
        "images_per_second": result.images_per_second,
        "score_size": size,
    }


def spread_first(settings: RoundSettings, pool: SampleSource, scores: Mapping[str, float]) -> list[str]:
    """The round's spread batch: `settings.spread` of the top SPREAD_FACTOR·spread by score, one per kind of scene."""
    from ml.start import encoder_features

    assert settings.spread is not None
    top = [i for i, _, _ in ranking(scores)[: SPREAD_FACTOR * settings.spread]]
    features = encoder_features(pool, top, encoder=settings.encoder or "lite0")
    return spread_picks(top, features, settings.spread, round_seed(settings.seed, settings.index, salt=17))


def run_round(
    settings: RoundSettings,
    *,
    labeled: SampleSource,
    pool: SampleSource,
    unlabeled: Sequence[str],
    val: SampleSource | None,
    num_classes: int,
    workdir: Path,
    init_from: Path | None = None,
    class_names: Mapping[int, str] | None = None,
    rank: bool = True,
    progress: ProgressFn = no_progress,
) -> RoundResult:
    """One round. `labeled`: the human-labelled images with their labels; `pool`: images (its labels, if any, are
    never read); `unlabeled`: the pool ids to score (and to pseudo-label); `init_from`: the previous round's model
    to warm-start from. `rank=False` skips scoring (a run's last round)."""
    from ml.data import SubsetSource

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    st = settings.self_training
    # Progress shares: train, score, pseudo-label, student, evaluate.
    shares = (0.4, 0.05, 0.05, 0.43, 0.07) if st else (0.8, 0.13, 0.0, 0.0, 0.07)
    seconds: dict[str, float] = {}
    config = train_config(settings, num_classes, warm=init_from is not None)
    low = 0.0
    model, seconds["train"], trainer_metrics = _train(
        config,
        labeled,
        SubsetSource(pool, list(unlabeled)) if config.method != "supervised" else None,
        workdir / "train.pt",
        init_from,
        _span(progress, low, low + shares[0], "training"),
    )
    low += shares[0]
    # The trained model ranks the pool before any student exists: the benchmarked pipeline ranks with the
    # method's model (only its final round self-trains), and so does the service.
    scores: dict[str, float] = {}
    score_info: dict[str, Any] = {"scored": 0, "seconds": 0.0}
    if rank:
        scores, score_info = score(
            settings, model, pool, unlabeled, labeled, num_classes, _span(progress, low, low + shares[1], "scoring")
        )
    seconds["score"] = float(score_info.get("seconds", 0.0))
    first: list[str] = []
    if rank and settings.spread and scores and get_strategy(settings.strategy).needs_model:
        started = time.perf_counter()
        first = spread_first(settings, pool, scores)
        score_info["spread"] = {"batch": len(first), "among": min(len(scores), SPREAD_FACTOR * settings.spread)}
        seconds["score"] += time.perf_counter() - started
    low += shares[1]
    teacher, pseudo_info, final_config = None, None, config
    if st is not None:
        from ml.predict import load_predictor
        from ml.pseudo import PseudoLabelSource, class_thresholds, write_predictions

        teacher = model
        started = time.perf_counter()
        predictor = load_predictor(teacher, device=settings.device, batch_size=settings.score_batch_size)
        folder = workdir / "predictions"
        write_predictions(
            predictor,
            pool,
            list(unlabeled),
            folder,
            settings.score_batch_size,
            _span(progress, low, low + shares[2], "pseudo-labelling"),
        )
        thresholds = class_thresholds(folder, list(unlabeled), num_classes, st.threshold, st.class_keep)
        pseudo_pool = PseudoLabelSource(SubsetSource(pool, list(unlabeled)), folder, labeled, thresholds)
        seconds["pseudo_label"] = time.perf_counter() - started
        sample = list(unlabeled)[:: max(1, len(unlabeled) // 200)]
        pseudo_info = {
            "threshold": st.threshold,
            "class_keep": st.class_keep,
            "class_thresholds": [round(float(t), 4) for t in thresholds],
            "images": len(unlabeled),
            "kept_fraction_sample": pseudo_pool.kept_fraction(sample),
        }
        low += shares[2]
        student = final_config = student_config(settings, num_classes)
        # A workdir may be shared (a simulation's round cache): students of other settings get other files.
        student_key = hashlib.sha256(
            json.dumps([asdict(student), st.threshold, st.class_keep], default=str).encode()
        ).hexdigest()
        model, seconds["student"], trainer_metrics["student"] = _train(
            student,
            labeled,
            pseudo_pool,
            workdir / f"student-{student_key[:10]}.pt",
            None,
            _span(progress, low, low + shares[3], "student"),
        )
        low += shares[3]
    evaluation = None
    if val is not None and len(val.ids) > 0:
        started = time.perf_counter()
        evaluation = evaluate(
            model,
            val,
            class_ids=settings.class_ids,
            class_names=class_names,
            device=settings.device,
            progress=_span(progress, low, low + shares[4], "evaluating"),
        )
        seconds["evaluate"] = time.perf_counter() - started
        if teacher is not None and pseudo_info is not None:
            # The teacher on the same validation images: what self-training added, paired, in every run.
            started = time.perf_counter()
            teacher_eval = evaluate(teacher, val, class_ids=settings.class_ids, device=settings.device)
            pseudo_info["teacher_miou"] = teacher_eval["miou"]
            pseudo_info["teacher_per_class_iou"] = teacher_eval["per_class_iou"]
            seconds["evaluate_teacher"] = time.perf_counter() - started
    progress(1.0, "round done")
    return RoundResult(
        checkpoint=model,
        teacher_checkpoint=teacher,
        train_config=config,
        model_config=final_config,
        trainer_metrics=trainer_metrics,
        evaluation=evaluation,
        scores=scores,
        seconds=seconds,
        score_info=score_info,
        pseudo_info=pseudo_info,
        first=first,
    )
