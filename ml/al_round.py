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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ml.interfaces import ProgressFn, SampleSource, TrainConfig, no_progress
from ml.profiles import SELF_TRAINING_TEACHER, profile_self_training, profile_train_config, profile_value
from ml.selection import SPREAD_FACTOR, get_strategy, id_key, ranking, spread_picks


@dataclass
class SelfTrainingSettings:
    """The final model's self-training: the round's model is the teacher of a student trained on the human
    labels plus the teacher's pseudo-labels of the pool (pixels under `threshold` confidence ignored)."""

    threshold: float = 0.9
    class_keep: float | None = None  # per-class thresholds keeping at least this share of each class (CBST)
    steps: int | None = None  # None: the profile's
    crop_size: int | None = None
    encoder_lr: float | None = None  # the student's encoder learning rate; None: the profile's
    # The student's network encoder (ml.network.ENCODERS); None: the round's where the round names one, else the
    # profile's student encoder (ml.profiles.SELF_TRAINING).
    encoder: str | None = None
    # A supervised teacher's encoder learning rate (the ensemble's supervised member's, and a supervised round's own
    # model's, which teaches as it is); None: the profile's supervised one.
    teacher_encoder_lr: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Noisy-student iterations: each later student learns from the pseudo-labels of the one before (1: one student).
    generations: int = 1
    # Who teaches the first student (TEACHERS): "round" (the round's model), "supervised" (a model trained on the
    # human labels alone, on the profile's supervised schedule, as ST++'s teacher is) or "ensemble" (both). On the
    # cpu profile the round's CPS model at 63 labels scores 4-5 points below plain supervised training on as many
    # labels. None: the profile's (ml.profiles.SELF_TRAINING_TEACHER).
    teacher: str | None = None
    # The teacher's pool probabilities averaged with those of the left-right mirrored image (ml.predict's flip) before
    # the threshold: a pixel the two views disagree on loses confidence and drops out of the pseudo-labels.
    teacher_flip: bool = False
    # The student's decoder with dropout (ml.network.DECODER_DROPOUT) while it trains: model noise on the student,
    # as Noisy Student gives its students, beside the CutMix input noise. Prediction runs without it.
    dropout: bool = False


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
    teachers: tuple[Path, ...]  # the models that taught the first student (their probabilities averaged)
    train_config: TrainConfig  # the method's training run
    model_config: TrainConfig  # the run that made `checkpoint`: the student's when self-training
    trainer_metrics: dict[str, Any]
    evaluation: dict[str, Any] | None  # None without a validation source
    scores: dict[str, float]  # every scored unlabelled image
    seconds: dict[str, float]
    score_info: dict[str, Any]
    pseudo_info: dict[str, Any] | None = None
    first: list[str] = field(default_factory=list)  # ranked before all others (the spread batch), in this order
    # The method's model when it is not `checkpoint` (a self-training round); None when the round did not train it
    # (a last round whose student a supervised teacher taught).
    method_checkpoint: Path | None = None

    @property
    def train_seconds(self) -> float:
        """Every training run of the round: the method's model, a supervised teacher, the students."""
        return sum(self.seconds.get(k, 0.0) for k in ("train", "teacher", "student"))

    @property
    def warm_start_source(self) -> Path:
        """What the next round of the same method starts from: the method's model, never the student (nor a
        supervised teacher) where the round trained one."""
        return self.method_checkpoint or self.checkpoint

    def ranked(self) -> list[tuple[str, float, int]]:
        ordered = ranking(self.scores)
        if not self.first:
            return ordered
        head = {i: n for n, i in enumerate(self.first)}
        ordered.sort(key=lambda item: (0, head[item[0]]) if item[0] in head else (1, item[2]))
        return [(i, value, rank) for rank, (i, value, _) in enumerate(ordered, start=1)]

    def picks(self, size: int) -> list[str]:
        return [i for i, _, _ in self.ranked()[:size]]


# round: the round's own model; supervised: a model of the human labels alone (ST++); ensemble: both, their
# probabilities averaged (each as one model): the supervised model is the better teacher on soil, sand and bedrock,
# the CPS model on rock (bench NOTES, fifteenth pass).
TEACHERS = ("round", "supervised", "ensemble")
# The supervised teacher's loss is the student's and CPS-Mars's (ENet-weighted CE + Dice), not the supervised
# baseline's plain CE: with CE the teacher scored rock 0.03 where the round's CPS model had 0.18, and its student
# lost the rock (bench NOTES, fifteenth pass).
SUPERVISED_TEACHER_OPTIONS: dict[str, Any] = {"sup_loss": "wce+dice"}


def round_seed(seed: int, round_index: int, salt: int = 0) -> int:
    return seed * 100_003 + round_index * 1_009 + salt


def supervised_model_teaches(method: str, teacher: str) -> bool:
    """Whether a supervised model teaches the student (so a teacher encoder learning rate has a model to set): a
    supervised teacher, the ensemble's supervised member, or a supervised round's own model, which teaches as it is."""
    return teacher != "round" or method == "supervised"


def train_config(settings: RoundSettings, num_classes: int, warm: bool) -> TrainConfig:
    st = settings.self_training
    # A supervised final round's own model is its student's teacher, so the teacher's encoder rate is its rate.
    teacher_lr = st.teacher_encoder_lr if settings.method == "supervised" and st is not None else None
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
        encoder_lr=teacher_lr,
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
        encoder_lr=st.encoder_lr,
        device=settings.device,
        encoder=st.encoder or settings.encoder,
        decoder_dropout=st.dropout,
        options=st.options,
    )


def supervised_teacher_config(settings: RoundSettings, num_classes: int) -> TrainConfig:
    """The supervised teacher's TrainConfig: the profile's supervised schedule (the round's explicit steps and crop
    winning, and the self-training's teacher encoder learning rate) with the student's loss."""
    return profile_train_config(
        "supervised",
        settings.profile,
        num_classes,
        seed=settings.seed,
        steps=settings.steps,
        crop_size=settings.crop_size,
        device=settings.device,
        encoder=settings.encoder,
        encoder_lr=settings.self_training.teacher_encoder_lr if settings.self_training is not None else None,
        options=SUPERVISED_TEACHER_OPTIONS,
    )


def _file_key(parts: Any) -> str:
    """A short stable name part for a file whose content depends on `parts` (a shared workdir holds several)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:10]


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
    checkpoint: Path | Sequence[Path],
    val: SampleSource,
    *,
    class_ids: Sequence[int] | None = None,
    class_names: Mapping[int, str] | None = None,
    device: str = "auto",
    batch_size: int = 8,
    flip: bool = False,
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Dataset-level IoU of a checkpoint (or of several, averaged) on a labelled source; `miou_without_rock` where a
    class is named rock. `flip`: predictions averaged with the mirrored image's (ml.predict)."""
    from ml.metrics import evaluate_predictor, miou_from_confusion
    from ml.predict import load_predictor

    predictor = load_predictor(checkpoint, device=device, batch_size=batch_size, flip=flip)
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


def _pseudo_pool(
    settings: RoundSettings,
    predictor_checkpoint: Path | Sequence[Path],
    labeled: SampleSource,
    pool: SampleSource,
    unlabeled: Sequence[str],
    num_classes: int,
    folder: Path,
    progress: ProgressFn,
) -> tuple[SampleSource, dict[str, Any]]:
    """The pool pseudo-labelled by a model (predictions written once to `folder`), human labels winning."""
    from ml.data import SubsetSource
    from ml.predict import load_predictor
    from ml.pseudo import PseudoLabelSource, class_thresholds, write_predictions

    st = settings.self_training
    assert st is not None
    ids = list(unlabeled)
    predictor = load_predictor(
        predictor_checkpoint, device=settings.device, batch_size=settings.score_batch_size, flip=st.teacher_flip
    )
    write_predictions(predictor, pool, ids, folder, settings.score_batch_size, progress)
    thresholds = class_thresholds(folder, ids, num_classes, st.threshold, st.class_keep)
    pseudo_pool = PseudoLabelSource(SubsetSource(pool, ids), folder, labeled, thresholds)
    sample = ids[:: max(1, len(ids) // 200)]
    return pseudo_pool, {
        "threshold": st.threshold,
        "class_keep": st.class_keep,
        "class_thresholds": [round(float(t), 4) for t in thresholds],
        "images": len(unlabeled),
        "kept_fraction_sample": pseudo_pool.kept_fraction(sample),
    }


def _self_train(
    settings: RoundSettings,
    labeled: SampleSource,
    pool: SampleSource,
    unlabeled: Sequence[str],
    val: SampleSource | None,
    num_classes: int,
    workdir: Path,
    teacher: Sequence[Path],
    seconds: dict[str, float],
    trainer_metrics: dict[str, Any],
    progress: ProgressFn,
) -> tuple[Path, TrainConfig, dict[str, Any]]:
    """The round's students: the first learns from `teacher`'s pseudo-labels of the pool; each later generation
    from the one before's. Returns (last student, its config, the pseudo-labels' record)."""
    st = settings.self_training
    assert st is not None
    student = student_config(settings, num_classes)
    generations = max(1, int(st.generations))
    share = 1.0 / generations
    # Each teacher's pool predictions are its own (a shared workdir may hold another teacher's).
    first_folder = "predictions" if st.teacher == "round" else f"predictions-{st.teacher}-teacher"
    if st.teacher_flip:
        first_folder += "-flip"
    source: Path | Sequence[Path] = teacher
    folder, info, last = workdir / first_folder, None, None
    history: list[dict[str, Any]] = []
    for generation in range(1, generations + 1):
        low = (generation - 1) * share
        started = time.perf_counter()
        pseudo_pool, gen_info = _pseudo_pool(
            settings,
            source,
            labeled,
            pool,
            unlabeled,
            num_classes,
            folder,
            _span(progress, low, low + 0.1 * share, f"generation {generation}: pseudo-labelling"),
        )
        seconds["pseudo_label"] = seconds.get("pseudo_label", 0.0) + time.perf_counter() - started
        info = info or gen_info
        # A workdir may be shared (a simulation's round cache): students of other settings get other files, and a
        # later generation's name also carries its number (the first's is what a one-generation run names it).
        key_parts: list[Any] = [asdict(student), st.threshold, st.class_keep]
        if st.teacher != "round":
            key_parts.append({"teacher": st.teacher})
        if st.teacher_flip:
            key_parts.append({"teacher_flip": True})
        if generation > 1:
            key_parts.append({"generation": generation})
        key = _file_key(key_parts)
        last, spent, metrics = _train(
            student,
            labeled,
            pseudo_pool,
            workdir / f"student-{key}.pt",
            None,
            _span(progress, low + 0.1 * share, low + share, f"generation {generation}: student"),
        )
        seconds["student"] = seconds.get("student", 0.0) + spent
        trainer_metrics["student" if generation == 1 else f"student_{generation}"] = metrics
        if generations > 1:
            record: dict[str, Any] = {
                "generation": generation,
                "checkpoint": last.name,
                "class_thresholds": gen_info["class_thresholds"],
                "kept_fraction_sample": gen_info["kept_fraction_sample"],
            }
            if generation < generations and val is not None and len(val.ids) > 0:
                # Each student but the last on val too (the last is the round's model): what each generation adds.
                record["miou"] = evaluate(last, val, class_ids=settings.class_ids, device=settings.device)["miou"]
            history.append(record)
        source, folder = last, workdir / f"predictions-{key}"
    assert info is not None and last is not None
    if history:
        info["generations"] = history
    return last, student, info


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
    if settings.self_training is not None and settings.self_training.teacher is None:
        teacher = SELF_TRAINING_TEACHER[settings.profile]
        settings = replace(settings, self_training=replace(settings.self_training, teacher=teacher))
    st = settings.self_training
    # Progress shares: train, score, pseudo-label, student, evaluate.
    shares = (0.4, 0.05, 0.05, 0.43, 0.07) if st else (0.8, 0.13, 0.0, 0.0, 0.07)
    seconds: dict[str, float] = {}
    if st is not None and st.teacher not in TEACHERS:
        raise ValueError(f"unknown self-training teacher {st.teacher!r}; known: {', '.join(TEACHERS)}")
    # A supervised method's model teaches as it is (trained with its own loss).
    supervised_teacher = st is not None and st.teacher != "round" and settings.method != "supervised"
    # Only a supervised teacher makes the method's model needless in a last round; an ensemble teaches with it.
    only_supervised = supervised_teacher and st is not None and st.teacher == "supervised"
    config = train_config(settings, num_classes, warm=init_from is not None)
    low = 0.0
    method_model: Path | None = None
    trainer_metrics: dict[str, Any] = {}
    seconds["train"] = 0.0
    # A last round (no ranking) whose student a supervised teacher alone teaches has no use for the method's model.
    if rank or not only_supervised:
        method_model, seconds["train"], trainer_metrics = _train(
            config,
            labeled,
            SubsetSource(pool, list(unlabeled)) if config.method != "supervised" else None,
            workdir / "train.pt",
            init_from,
            _span(progress, low, low + shares[0] / (2 if supervised_teacher else 1), "training"),
        )
    model = method_model
    supervised: Path | None = None
    if supervised_teacher:
        teacher_config = supervised_teacher_config(settings, num_classes)
        key = _file_key(asdict(teacher_config))
        supervised, seconds["teacher"], trainer_metrics["teacher"] = _train(
            teacher_config,
            labeled,
            None,
            workdir / f"teacher-{key}.pt",
            None,
            _span(progress, low + (shares[0] / 2 if method_model else 0.0), low + shares[0], "supervised teacher"),
        )
        if method_model is None:
            config = teacher_config  # the round's only training run
    low += shares[0]
    # The trained model ranks the pool before any student exists: the benchmarked pipeline ranks with the
    # method's model (only its final round self-trains), and so does the service.
    scores: dict[str, float] = {}
    score_info: dict[str, Any] = {"scored": 0, "seconds": 0.0}
    if rank:
        assert method_model is not None
        scores, score_info = score(
            settings,
            method_model,
            pool,
            unlabeled,
            labeled,
            num_classes,
            _span(progress, low, low + shares[1], "scoring"),
        )
    seconds["score"] = float(score_info.get("seconds", 0.0))
    first: list[str] = []
    if rank and settings.spread and scores and get_strategy(settings.strategy).needs_model:
        started = time.perf_counter()
        first = spread_first(settings, pool, scores)
        score_info["spread"] = {"batch": len(first), "among": min(len(scores), SPREAD_FACTOR * settings.spread)}
        seconds["score"] += time.perf_counter() - started
    low += shares[1]
    pseudo_info, final_config = None, config
    teachers: tuple[Path, ...] = ()
    if st is not None:
        if supervised is None:  # the round's model teaches (a supervised method's model is a supervised teacher)
            assert method_model is not None
            teachers = (method_model,)
        elif st.teacher == "supervised":
            teachers = (supervised,)
        else:
            assert method_model is not None
            teachers = (method_model, supervised)
        model, final_config, pseudo_info = _self_train(
            settings,
            labeled,
            pool,
            unlabeled,
            val,
            num_classes,
            workdir,
            teachers,
            seconds,
            trainer_metrics,
            _span(progress, low, low + shares[2] + shares[3], "self-training"),
        )
        pseudo_info["teacher"] = st.teacher
        if st.teacher_flip:
            pseudo_info["teacher_flip"] = True
        low += shares[2] + shares[3]
    assert model is not None
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
        if teachers and pseudo_info is not None:
            # The teacher on the same validation images: what self-training added, paired, in every run; an
            # ensemble's members too, to know what each brought.
            started = time.perf_counter()
            teacher_eval = evaluate(teachers, val, class_ids=settings.class_ids, device=settings.device)
            pseudo_info["teacher_miou"] = teacher_eval["miou"]
            pseudo_info["teacher_per_class_iou"] = teacher_eval["per_class_iou"]
            if st is not None and st.teacher_flip:
                # The teacher as it pseudo-labelled: with the mirrored image.
                flipped = evaluate(teachers, val, class_ids=settings.class_ids, device=settings.device, flip=True)
                pseudo_info["teacher_flip_miou"] = flipped["miou"]
                pseudo_info["teacher_flip_per_class_iou"] = flipped["per_class_iou"]
            if len(teachers) > 1:
                members = [(t, evaluate(t, val, class_ids=settings.class_ids, device=settings.device))
                           for t in teachers]  # fmt: skip
                pseudo_info["teacher_members"] = [
                    {"checkpoint": t.name, "miou": e["miou"], "per_class_iou": e["per_class_iou"]} for t, e in members
                ]
            seconds["evaluate_teacher"] = time.perf_counter() - started
    progress(1.0, "round done")
    return RoundResult(
        checkpoint=model,
        teachers=teachers,
        train_config=config,
        model_config=final_config,
        trainer_metrics=trainer_metrics,
        evaluation=evaluation,
        scores=scores,
        seconds=seconds,
        score_info=score_info,
        pseudo_info=pseudo_info,
        first=first,
        method_checkpoint=method_model if st is not None else None,
    )
