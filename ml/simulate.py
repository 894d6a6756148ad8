"""Active-learning simulation: replay the labelling loop on a labelled dataset, its labels as the oracle.

Round 0 trains on an initial random set; each of the `rounds` query rounds scores the unlabelled pool
with the current model, adds the strategy's picks, and retrains, until the labelled total reaches the
budget (METHODS §4.4: the queried part Q = budget − initial is split as floor(Q/k) per round, the
remainder going to the last round). Every round is evaluated on the validation set with
`ml.metrics` (dataset-level IoU) and written to `<out>/round_<r>.json` before the next round starts.

Resuming: a round whose JSON exists is not redone (its JSON holds the ids it queried, so the next
round's labelled set is known without re-scoring); a round that crashed mid-training resumes from the
trainer's checkpoint (`ml.ssl.train(..., resume=True)`).

Cost savers (all optional, all recorded in the round JSON):
- a shared round cache (`round_cache`): a round's model depends only on its training config, its labelled ids
  and the model it starts from, so runs that agree on those train it once (keyed by a hash of the three):
  strategies share round 0, and runs that differ only in their final model (the self-trained student's
  settings) share every round's teacher and its pseudo-labels, their students side by side in the last one;
- warm start: round r > 0 starts from round r−1's weights and trains `warm_steps` steps (METHODS §4.4
  lists it as the compute-saving option; the default of the `paper` profile is the cold start);
- candidate subsampling: each round scores a seeded random subset of the unlabelled pool, optionally
  resized (`score_size`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ml.al_round import (
    TEACHERS,
    RoundSettings,
    SelfTrainingSettings,
    round_seed,
    run_round,
    student_config,
    supervised_model_teaches,
    train_config,
)
from ml.interfaces import ProgressFn, TrainConfig, no_progress
from ml.profiles import SELF_TRAINING, SELF_TRAINING_TEACHER, WARM_START_DEFAULT
from ml.sam.models import sha256_of

ROUND_FILE = "round_{:03d}.json"
RUN_FILE = "run.json"


@dataclass
class SimulationConfig:
    data: Path
    out: Path
    method: str = "cps-mars"
    strategy: str = "ueq"
    initial: str = "1%"  # count ("21") or percentage of the pool ("1%")
    budget: str = "3%"  # final labelled total, count or percentage
    rounds: int = 2  # query rounds after round 0
    profile: str = "cpu"
    seed: int = 0
    pool_split: str | None = "pool"  # None: every image of `data` not used for validation
    val_split: str | None = "val"
    val_data: Path | None = None  # another dataset folder for validation
    class_ids: tuple[int, ...] | None = None  # mIoU classes; None = those present in the val labels
    steps: int | None = None  # overrides the profile
    warm_steps: int | None = None
    warm_start: bool | None = None  # None = the profile default
    crop_size: int | None = None
    encoder: str | None = None
    device: str = "auto"
    candidates: int | None = None  # pool images scored per round; None = all unlabelled
    score_size: int | None = -1  # resize side for scoring; None = native size; -1 = the profile's
    start: str = "random"  # how the initial set is chosen: random (the papers' baseline) | kmeans | kcenter
    # The first set given by id (another run's final labels, a project's): overrides `start` and `initial`.
    initial_ids: list[str] | None = None
    final_steps: int | None = None  # steps of the last round's training (cold or warm); None = as other rounds
    self_training: bool = False  # the last round self-trains a student on the pool's pseudo-labels
    self_training_threshold: float = 0.9
    self_training_class_keep: float | None = None  # per-class thresholds (ml.pseudo.class_thresholds)
    self_training_steps: int | None = None  # None: the profile's
    self_training_encoder_lr: float | None = None  # None: the profile's
    # The student's encoder; None: the rounds' where `encoder` is set, else the profile's student encoder.
    self_training_encoder: str | None = None
    self_training_teacher_encoder_lr: float | None = None  # a supervised teacher's; None: the profile's supervised
    self_training_options: dict[str, Any] = field(default_factory=dict)
    self_training_generations: int = 1  # noisy-student iterations of the final model
    # round | supervised | ensemble (SelfTrainingSettings.teacher); None: the profile's
    self_training_teacher: str | None = None
    self_training_teacher_flip: bool = False  # the teacher pseudo-labels with the mirrored image too
    self_training_dropout: bool = False  # the student trains with decoder dropout (SelfTrainingSettings.dropout)
    score_batch_size: int = 8
    eval_batch_size: int = 8
    top_k_percent: float | None = None
    exclude_class: int | None = None
    round_cache: Path | None = None  # folder of round models shared between runs (see the module's docstring)
    checkpoint_dir: Path | None = None  # where round checkpoints go; None = inside `out`
    train_options: dict[str, Any] = field(default_factory=dict)
    effort: bool = False  # each round with picks records the simulated annotator's effort on them (ml.annotator)
    spread: bool = False  # each query batch is spread over kinds of scene (RoundSettings.spread)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
            elif isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimulationConfig:
        known = {f.name for f in fields(cls)}
        data = _renamed(data)
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("data", "out", "val_data", "round_cache", "checkpoint_dir"):
            if kwargs.get(key) is not None:
                kwargs[key] = Path(kwargs[key])
        if kwargs.get("class_ids") is not None:
            kwargs["class_ids"] = tuple(kwargs["class_ids"])
        return cls(**kwargs)


# ---------------------------------------------------------------- pure helpers


def _machine() -> dict[str, Any]:
    import torch

    return {
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def resolve_count(spec: str | int, pool_size: int) -> int:
    """'21' → 21; '3%' → round(3% of the pool); never more than the pool."""
    text = str(spec).strip()
    value = round(float(text[:-1]) * pool_size / 100.0) if text.endswith("%") else int(text)
    if value < 0:
        raise ValueError(f"count {spec!r} is negative")
    return min(value, pool_size)


def query_sizes(initial: int, budget: int, rounds: int) -> list[int]:
    """Images added in each query round: floor(Q/k) each, the remainder in the last round."""
    if budget < initial:
        raise ValueError(f"budget {budget} is below the initial set {initial}")
    if rounds <= 0:
        if budget != initial:
            raise ValueError("with 0 query rounds the budget must equal the initial set")
        return []
    queried = budget - initial
    sizes = [queried // rounds] * rounds
    sizes[-1] += queried - sum(sizes)
    return sizes


def build_train_config(config: SimulationConfig, num_classes: int, round_index: int, warm: bool) -> TrainConfig:
    return train_config(round_settings(config, round_index, final=False), num_classes, warm=warm and round_index > 0)


def round_settings(config: SimulationConfig, round_index: int, final: bool) -> RoundSettings:
    """The settings of round `round_index`; the last round (`final`) trains the model that labels the pool."""
    steps = config.final_steps if final and config.final_steps is not None else config.steps
    self_training = None
    if final and config.self_training:
        self_training = SelfTrainingSettings(
            threshold=config.self_training_threshold,
            class_keep=config.self_training_class_keep,
            steps=config.self_training_steps,
            encoder_lr=config.self_training_encoder_lr,
            encoder=config.self_training_encoder,
            teacher_encoder_lr=config.self_training_teacher_encoder_lr,
            crop_size=config.crop_size,
            options=dict(config.self_training_options),
            generations=config.self_training_generations,
            teacher=config.self_training_teacher,
            teacher_flip=config.self_training_teacher_flip,
            dropout=config.self_training_dropout,
        )
    return RoundSettings(
        method=config.method,
        strategy=config.strategy,
        profile=config.profile,
        seed=config.seed,
        index=round_index,
        steps=steps,
        warm_steps=config.warm_steps if not (final and config.final_steps is not None) else config.final_steps,
        crop_size=config.crop_size,
        encoder=config.encoder,
        device=config.device,
        train_options=config.train_options,
        score_size=config.score_size,
        score_batch_size=config.score_batch_size,
        candidates=config.candidates,
        top_k_percent=config.top_k_percent,
        exclude_class=config.exclude_class,
        class_ids=config.class_ids,
        self_training=self_training,
    )


def _renamed(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config with fields renamed since read under their current names (round0_cache: round_cache)."""
    out = dict(saved)
    if "round0_cache" in out:
        out.setdefault("round_cache", out.pop("round0_cache"))
    return out


def config_key(train: TrainConfig, labeled_ids: Sequence[str], data: Path, extra: str = "") -> str:
    """A stable hash of a training run's inputs (`extra`: the model it starts from), for sharing identical round
    models between runs."""
    payload = json.dumps(
        {"train": asdict(train), "ids": sorted(labeled_ids), "data": str(Path(data).resolve()), "extra": extra},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def read_rounds(run_dir: Path) -> list[dict[str, Any]]:
    """The round JSONs of a run folder, in round order."""
    return [json.loads(p.read_text()) for p in sorted(Path(run_dir).glob("round_*.json"))]


def tqdm_progress(desc: str, position: int = 1) -> tuple[ProgressFn, Callable[[], None]]:
    """A ProgressFn drawing a tqdm bar (0..1 as 0..1000), and a function that closes the bar."""
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, position=position, leave=False, dynamic_ncols=True)

    def progress(fraction: float, message: str) -> None:
        bar.n = int(max(0.0, min(1.0, fraction)) * 1000)
        bar.set_postfix_str(message[:60], refresh=False)
        bar.refresh()

    return progress, bar.close


# ---------------------------------------------------------------- the loop


@dataclass
class _Datasets:
    pool: Any
    val: Any
    pool_ids: list[str]
    num_classes: int
    class_names: dict[int, str]


def _open(config: SimulationConfig) -> _Datasets:
    from ml.data import CachedSource, SubsetSource, open_dataset, read_classes

    classes = read_classes(config.data)
    if config.val_data is not None:
        val = open_dataset(config.val_data, config.val_split)
        val_ids: set[str] = set()
    elif config.val_split is not None:
        val = open_dataset(config.data, config.val_split)
        val_ids = set(val.ids)
    else:
        raise ValueError("give a validation split (val_split) or a validation folder (val_data)")
    pool = open_dataset(config.data, config.pool_split)
    pool_ids = sorted(i for i in pool.ids if i not in val_ids)
    if pool.ids != pool_ids:
        pool = SubsetSource(pool, pool_ids)
    if not pool_ids:
        raise ValueError(f"{config.data}: the pool is empty")
    return _Datasets(
        pool=CachedSource(pool),
        val=CachedSource(val),
        pool_ids=pool_ids,
        num_classes=max(c.id for c in classes) + 1,
        class_names={c.id: c.name for c in classes},
    )


def train_fingerprint(config: SimulationConfig) -> dict[str, Any]:
    """The training settings the profile resolves to (cold and warm rounds), so that a run folder made under
    an earlier profile is never resumed under a changed one."""
    cold = build_train_config(config, 0, round_index=0, warm=False)
    warm = build_train_config(config, 0, round_index=1, warm=True)
    ignore = {"device", "num_classes"}
    return {
        name: {k: v for k, v in json.loads(json.dumps(asdict(train), default=str)).items() if k not in ignore}
        for name, train in (("cold", cold), ("warm", warm))
    }


# What a run file without the field was made with, where the field's default is no longer that.
FORMER_DEFAULTS: dict[str, Any] = {"self_training_teacher": "round", "self_training_encoder_lr": 1e-4}
# The student's steps a run file that left them to its profile (null) was made with, per profile, where the
# profile's value changed since (cpu: 600 until the twenty-seventh pass).
FORMER_STUDENT_STEPS: dict[str, int] = {"cpu": 600}


def _check_run_file(config: SimulationConfig) -> None:
    path = config.out / RUN_FILE
    current = {**config.to_json(), "train_fingerprint": train_fingerprint(config)}
    if path.exists():
        saved = _renamed(json.loads(path.read_text()))
        if saved.get("self_training") and saved.get("self_training_steps") is None:
            profile = saved.get("profile", "cpu")
            saved["self_training_steps"] = FORMER_STUDENT_STEPS.get(profile, SELF_TRAINING[profile]["steps"])
        if saved.get("self_training_encoder") is None:
            # Made before the student's encoder was written here: the student had the rounds' encoder.
            saved["self_training_encoder"] = saved.get("encoder") or TrainConfig.encoder
        # Where files go and how fast it runs do not change a run's results.
        ignore = {"out", "device", "score_batch_size", "eval_batch_size", "checkpoint_dir", "round_cache", "effort"}
        if "train_fingerprint" not in saved:  # a run folder from before fingerprints: its config fields decide
            ignore.add("train_fingerprint")
        if not config.self_training:  # no student, no teacher
            ignore.update(
                (
                    "self_training_teacher",
                    "self_training_encoder_lr",
                    "self_training_teacher_encoder_lr",
                    "self_training_encoder",
                    "self_training_teacher_flip",
                )
            )
        # A field added after the run was made reads as its default (the run was made with that behaviour), or as
        # the value it had then where the default changed since.
        defaults = {f.name: f.default for f in fields(SimulationConfig) if f.default is not MISSING}
        defaults.update(FORMER_DEFAULTS)
        changed = sorted(k for k in current if k not in ignore and saved.get(k, defaults.get(k)) != current[k])
        if changed:
            raise ValueError(
                f"{config.out} holds a run with a different configuration ({', '.join(changed)}); "
                "use another output folder"
            )
    else:
        write_json_atomic(path, current)


def _shared_workdir(
    config: SimulationConfig, train: TrainConfig, labeled: list[str], init_from: Path | None
) -> Path | None:
    """The round's folder in the shared round cache: its model depends only on its training config, its labelled
    ids and the model it starts from (by content: a finished checkpoint is never rewritten), so a run that agrees
    on the three finds it finished and reuses it. Everything else a round writes there is keyed too: the
    teacher's pool predictions depend on that model alone, and a student's file is named by its settings
    (ml.al_round)."""
    if config.round_cache is None:
        return None
    # Round 0 keeps the key it had before later rounds were shared, so existing caches stay valid.
    extra = "" if init_from is None else "init:" + sha256_of(Path(init_from))
    return Path(config.round_cache) / config_key(train, labeled, config.data, extra)


def initial_ids(config: SimulationConfig, ds: _Datasets, count: int) -> list[str]:
    """The first set to label: `random` (the papers' baseline), or `kmeans` / `kcenter` (representative images
    chosen from pretrained encoder features): ml.start.first_set, as the service's first-set job calls it."""
    from ml.start import first_set

    if config.initial_ids is not None:
        unknown = sorted(set(config.initial_ids) - set(ds.pool_ids))
        if unknown:
            raise ValueError(f"initial_ids not in the pool: {', '.join(unknown[:5])}")
        return sorted(set(config.initial_ids))
    seed = round_seed(config.seed, 0, salt=1) if config.start == "random" else config.seed
    return sorted(i for i, _ in first_set(ds.pool, ds.pool_ids, count, method=config.start, seed=seed))


def check_config(config: SimulationConfig) -> None:
    """Refuse, with ValueError naming the field, a configuration that cannot run, before anything is written."""
    from ml.network import ENCODERS
    from ml.selection import get_strategy

    try:
        get_strategy(config.strategy)
    except ValueError as error:
        raise ValueError(f"strategy: {error}") from error
    for name, encoder in (("encoder", config.encoder), ("self_training_encoder", config.self_training_encoder)):
        if encoder is not None and encoder not in ENCODERS:
            raise ValueError(f"{name}: unknown encoder {encoder!r}; choose one of {sorted(ENCODERS)}")
    if config.profile not in SELF_TRAINING_TEACHER:
        raise ValueError(f"profile: unknown profile {config.profile!r}; choose one of {sorted(SELF_TRAINING_TEACHER)}")
    if config.self_training_teacher is not None and config.self_training_teacher not in TEACHERS:
        raise ValueError(
            f"self_training_teacher: unknown teacher {config.self_training_teacher!r}; choose one of {list(TEACHERS)}"
        )
    teacher = config.self_training_teacher or SELF_TRAINING_TEACHER[config.profile]
    lr_without_teacher = not supervised_model_teaches(config.method, teacher)
    if config.self_training and config.self_training_teacher_encoder_lr is not None and lr_without_teacher:
        raise ValueError(
            "self_training_teacher_encoder_lr is a supervised teacher's; this run's teacher is its "
            f"{config.method} round model"
        )


def run_simulation(config: SimulationConfig, progress: ProgressFn = no_progress) -> list[dict[str, Any]]:
    """Run (or resume) every round; returns the round records."""
    from tqdm import tqdm

    from ml.data import SubsetSource

    config.out = Path(config.out)
    check_config(config)
    if config.self_training:
        # The run file names the teacher, the student's encoder learning rate and its steps the run had, not "the
        # profile's" (a default that may change).
        if config.self_training_teacher is None:
            config.self_training_teacher = SELF_TRAINING_TEACHER[config.profile]
        student = student_config(round_settings(config, config.rounds, final=True), num_classes=2)
        if config.self_training_encoder_lr is None:
            config.self_training_encoder_lr = student.encoder_lr
        if config.self_training_steps is None:
            config.self_training_steps = student.steps
        if config.self_training_encoder is None:
            config.self_training_encoder = student.encoder
    config.out.mkdir(parents=True, exist_ok=True)
    _check_run_file(config)
    ds = _open(config)
    initial = (
        len(set(config.initial_ids))
        if config.initial_ids is not None
        else resolve_count(config.initial, len(ds.pool_ids))
    )
    budget = resolve_count(config.budget, len(ds.pool_ids))
    sizes = query_sizes(initial, budget, config.rounds)
    warm = WARM_START_DEFAULT[config.profile] if config.warm_start is None else config.warm_start
    labeled = initial_ids(config, ds, initial)
    records: list[dict[str, Any]] = []
    previous: Path | None = None
    total_rounds = config.rounds + 1
    rounds_bar = tqdm(range(total_rounds), desc=f"{config.method}/{config.strategy} s{config.seed}", position=0)
    for r in rounds_bar:
        path = config.out / ROUND_FILE.format(r)
        if path.exists():
            record = json.loads(path.read_text())
            records.append(record)
            labeled = sorted({*record["labeled_ids"], *record["queried_ids"]})
            previous = Path(record.get("warm_start_source") or record["checkpoint"])
            progress((r + 1) / total_rounds, f"round {r} already done")
            continue
        final = r == config.rounds
        settings = round_settings(config, r, final)
        if config.spread and not final:
            settings.spread = sizes[r]
        init_from = previous if warm and r > 0 else None
        trains = train_config(settings, ds.num_classes, init_from is not None)
        shared = _shared_workdir(config, trains, labeled, init_from)
        workdir = shared or (config.checkpoint_dir or config.out) / f"round_{r:03d}"
        labeled_set = set(labeled)
        inner, close = tqdm_progress(f"round {r}")
        result = run_round(
            settings,
            labeled=SubsetSource(ds.pool, labeled),
            pool=ds.pool,
            unlabeled=[i for i in ds.pool_ids if i not in labeled_set],
            val=ds.val,
            num_classes=ds.num_classes,
            workdir=workdir,
            init_from=init_from,
            class_names=ds.class_names,
            rank=not final,
            progress=inner,
        )
        close()
        queried = result.picks(sizes[r]) if not final else []
        evaluation = result.evaluation or {}
        record = {
            "round": r,
            "labeled_count": len(labeled),
            "labeled_ids": labeled,
            "queried_ids": queried,
            "miou": evaluation["miou"],
            "per_class_iou": evaluation["per_class_iou"],
            "miou_without_rock": evaluation.get("miou_without_rock"),
            "pixel_accuracy": evaluation["pixel_accuracy"],
            "confusion": evaluation["confusion"],
            "class_ids": evaluation["class_ids"],
            "class_names": evaluation["class_names"],
            "val_images": evaluation["images"],
            "train_seconds": result.train_seconds,
            "eval_seconds": result.seconds.get("evaluate"),
            "score_seconds": result.seconds["score"],
            "pseudo_label_seconds": result.seconds.get("pseudo_label"),
            "seconds": result.seconds,
            "scored_count": result.score_info.get("scored", 0),
            "score_images_per_second": result.score_info.get("images_per_second"),
            "picked_scores": {i: result.scores[i] for i in queried},
            "spread": result.score_info.get("spread"),
            "round0_shared": r == 0 and shared is not None,  # kept for the readers of earlier runs
            "shared_workdir": str(shared) if shared is not None else None,
            "warm_start_from": str(init_from) if init_from else None,
            "checkpoint": str(result.checkpoint),
            "warm_start_source": str(result.warm_start_source),
            "pseudo_labels": result.pseudo_info,
            # The call that wrote this record: its threads and load say whether its seconds were contended (runs
            # side by side share the cores). A round taken from the round cache was trained by an earlier call.
            "machine": _machine(),
            "seed": config.seed,
            "method": config.method,
            "strategy": config.strategy,
            "config": config.to_json(),
            "train_config": asdict(result.train_config),
            "trainer_metrics": result.trainer_metrics,
        }
        if config.effort and queried:  # labelling the picks from empty and from this round's prediction
            from ml.annotator import round_effort

            record["effort"] = round_effort(ds.pool, queried, result.checkpoint, config.device)
        write_json_atomic(path, record)
        records.append(record)
        rounds_bar.set_postfix_str(f"labeled {len(labeled)} mIoU {evaluation['miou']:.3f}")
        progress((r + 1) / total_rounds, f"round {r}: {len(labeled)} labeled, mIoU {evaluation['miou']:.4f}")
        labeled = sorted({*labeled, *queried})
        previous = result.warm_start_source
    rounds_bar.close()
    return records


# ---------------------------------------------------------------- label-efficiency plot


def run_label(run_dir: Path) -> str:
    """A run folder's line label: its name without a trailing '-seed<k>', so seeds share a line."""
    return re.sub(r"-seed\d+$", "", Path(run_dir).resolve().name)


def curves(run_dirs: Sequence[Path], metric: str = "miou") -> dict[str, dict[int, list[float]]]:
    """{label: {labelled count: [metric per seed]}} over the given run folders."""
    out: dict[str, dict[int, list[float]]] = {}
    for run_dir in run_dirs:
        for record in read_rounds(run_dir):
            if metric == "effort":  # mean actions per picked image, from empty and from the model, two lines
                for start in ("from_empty", "from_model"):
                    if (record.get("effort") or {}).get(start) is not None:
                        label = f"{run_label(run_dir)} {start.replace('_', ' ')}"
                        out.setdefault(label, {}).setdefault(int(record["labeled_count"]), [])
                        out[label][int(record["labeled_count"])].append(record["effort"][start])
                continue
            value = record.get(metric)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            out.setdefault(run_label(run_dir), {}).setdefault(int(record["labeled_count"]), []).append(value)
    return out


def plot(run_dirs: Sequence[Path], out_png: Path, metric: str = "miou", title: str | None = None) -> Path:
    """mIoU vs labelled images, one line per run name (mean over its seeds, band = min..max).

    A run with a single point far right of every AL curve (a fully supervised reference) is drawn as a
    dashed horizontal line instead of stretching the axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = curves(run_dirs, metric)
    if not data:
        raise ValueError("no round JSONs with that metric in the given folders")
    al_max = max((max(pts) for pts in data.values() if len(pts) > 1), default=None)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in sorted(data.items()):
        xs = sorted(points)
        means = np.array([np.mean(points[x]) for x in xs])
        if al_max is not None and len(xs) == 1 and xs[0] > 2 * al_max:
            ax.axhline(means[0], linestyle="--", color="grey", label=f"{label} ({xs[0]} labels)")
            continue
        lo = np.array([np.min(points[x]) for x in xs])
        hi = np.array([np.max(points[x]) for x in xs])
        seeds = max(len(points[x]) for x in xs)
        (line,) = ax.plot(xs, means, marker="o", label=f"{label} (n={seeds})")
        if seeds > 1:
            ax.fill_between(xs, lo, hi, alpha=0.15, color=line.get_color())
    ax.set_xlabel("labelled images")
    ax.set_ylabel("mean actions per picked image" if metric == "effort" else metric)
    ax.set_title(title or "label efficiency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png
