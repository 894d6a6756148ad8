"""Schedule profiles: the training settings of each method, sized for a machine kind.

`cpu` is sized for 2 CPU cores (bench/label_efficiency.py has the arithmetic); `paper` is the papers' GPU
recipe (METHODS §2.2, §6: 512 crops, scale 0.5–2, batch 8 + 8, 240 epochs × 625 iterations). The simulator
and the service's rounds both build their TrainConfig here, so a round trains exactly as the benchmark did.
"""

from __future__ import annotations

from typing import Any

from ml.interfaces import TrainConfig

# SSL methods on the cpu profile train their first half on labelled images only (cheap, and no
# pseudo-labels from an untrained model), then ramp the unsupervised weight up over a fifth of the steps.
_CPU_SSL_OPTIONS = {"burn_in": 0.5, "unsup_rampup": 0.2}

# The papers' GPU schedule, for every method.
_PAPER: dict[str, Any] = {
    "crop_size": 512,
    "scale_range": (0.5, 2.0),
    "batch_labeled": 8,
    "batch_unlabeled": 8,
    "steps": 150_000,
    "amp": True,
}

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "supervised": {"crop_size": 192, "batch_labeled": 8, "steps": 400},
        "cps-mars": {
            "crop_size": 128,
            "batch_labeled": 8,
            "batch_unlabeled": 8,
            "steps": 320,
            "options": _CPU_SSL_OPTIONS,
        },
        "s5mars": {
            "crop_size": 128,
            "batch_labeled": 8,
            "batch_unlabeled": 8,
            "steps": 320,
            # The paper's 0.996 averages over ~250 steps, most of a 320-step run: the teacher (the model that
            # predicts) lagged its student by 2.5 mIoU points on the dev set; 0.99 (~100 steps) by 0.7.
            "options": {**_CPU_SSL_OPTIONS, "ema_decay": 0.99},
        },
    },
    "paper": {method: dict(_PAPER) for method in ("supervised", "cps-mars", "s5mars")},
}
# The self-trained final model (ml.ssl.self_training, ml.al_round): its student's schedule per profile. cpu: the
# student's encoder learns at 1e-3 (every other model's at 1e-4): it sees ~2,000 pseudo-labelled Mars images in its
# steps, and on the pipeline's own 63 labels 1e-3 beat 1e-4 by +1.5 on the mean of 5 seeds [+2.4, +1.4, +2.2, +4.5,
# -3.1], on random-query labels by +2.7 [+1.3, +4.0, +3.1, +2.2, +2.8], at no cost in time (bench NOTES, twentieth
# and twenty-first passes). paper: not measured. A profile may name the student's encoder ("encoder"); none does: a
# Lite2 student under the Lite0 teacher gained +1.1 on the pipeline's labels and lost on the random-query run's (bench
# NOTES, twenty-second and twenty-third passes). cpu's 500 steps (its poly schedule ending there), 600 until the
# twenty-seventh pass: on the same teachers (one machine, the round cache sharing each seed's teacher and its
# pseudo-labels) +0.7 on the mean of 5 seeds [+1.5, +1.3, +0.9, -0.8, +0.5], without rock +1.1, in a sixth less of the
# student's time, the largest part of the 40-minute budget.
SELF_TRAINING: dict[str, dict[str, Any]] = {
    "cpu": {"crop_size": 192, "batch_labeled": 8, "batch_unlabeled": 8, "steps": 500, "encoder_lr": 1e-3},
    "paper": dict(_PAPER),
}
# Per-profile round settings that are not training settings. score_size: the side pool images are resized to for
# scoring (None = native), so that a round can score its whole pool.
ROUND_SETTINGS: dict[str, dict[str, Any]] = {
    "cpu": {"score_size": 128},
    "paper": {"score_size": None},
}
WARM_START_DEFAULT = {"cpu": True, "paper": False}
# Who teaches a self-trained final model when the round does not say (ml.al_round.TEACHERS), per profile. cpu: a
# supervised model of the labels; on the pipeline's own 63 labels its students beat the CPS-taught ones by +1.9 on
# the mean of 5 seeds [+2.7, +1.3, +1.7, -0.2, +3.9] (bench NOTES, sixteenth pass). paper: not measured.
SELF_TRAINING_TEACHER: dict[str, str] = {"cpu": "supervised", "paper": "round"}
WARM_STEPS_FRACTION = 0.2  # warm-started rounds train this fraction of the profile's steps by default
# A warm-started model has learnt already: no burn-in and no ramp-up again; the S5Mars teacher carries on.
WARM_OPTIONS: dict[str, dict[str, Any]] = {
    "cps-mars": {"burn_in": 0.0, "unsup_rampup": 0.0},
    "s5mars": {"burn_in": 0.0, "unsup_rampup": 0.0, "ema_continue": True},
}


def profile_train_config(
    method: str,
    profile: str,
    num_classes: int,
    *,
    seed: int = 0,
    steps: int | None = None,
    crop_size: int | None = None,
    warm: bool = False,
    warm_steps: int | None = None,
    decoder_dropout: bool = False,
    device: str = "auto",
    encoder: str | None = None,
    encoder_lr: float | None = None,
    options: dict[str, Any] | None = None,
) -> TrainConfig:
    """The TrainConfig of `method` under `profile`; explicit arguments override the profile.

    `warm`: the run continues from an earlier model, so it trains `warm_steps` (default
    WARM_STEPS_FRACTION of the steps) with WARM_OPTIONS."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}")
    if method not in PROFILES[profile]:
        raise ValueError(f"unknown method {method!r}; known: {sorted(PROFILES[profile])}")
    base = dict(PROFILES[profile][method])
    merged_options = dict(base.pop("options", {}))
    if crop_size is not None:
        base["crop_size"] = crop_size
    total = steps if steps is not None else base["steps"]
    if warm:
        total = warm_steps if warm_steps is not None else max(1, round(total * WARM_STEPS_FRACTION))
        merged_options.update(WARM_OPTIONS.get(method, {}))
    base["steps"] = total
    merged_options.update(options or {})
    config = TrainConfig(
        method=method,
        num_classes=num_classes,
        seed=seed,
        device=device,
        decoder_dropout=decoder_dropout,
        options=merged_options,
        **base,
    )
    if encoder is not None:
        config.encoder = encoder
    if encoder_lr is not None:
        config.encoder_lr = encoder_lr
    return config


def profile_value(profile: str, key: str) -> Any:
    if profile not in ROUND_SETTINGS:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(ROUND_SETTINGS)}")
    return ROUND_SETTINGS[profile][key]


def profile_self_training(
    profile: str,
    num_classes: int,
    *,
    seed: int = 0,
    steps: int | None = None,
    crop_size: int | None = None,
    encoder_lr: float | None = None,
    device: str = "auto",
    encoder: str | None = None,
    decoder_dropout: bool = False,
    options: dict[str, Any] | None = None,
) -> TrainConfig:
    """The student's TrainConfig of a self-trained final model under `profile`."""
    if profile not in SELF_TRAINING:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(SELF_TRAINING)}")
    base = dict(SELF_TRAINING[profile])
    if steps is not None:
        base["steps"] = steps
    if crop_size is not None:
        base["crop_size"] = crop_size
    if encoder_lr is not None:
        base["encoder_lr"] = encoder_lr
    config = TrainConfig(
        method="self-training",
        num_classes=num_classes,
        seed=seed,
        device=device,
        decoder_dropout=decoder_dropout,
        options=dict(options or {}),
        **base,
    )
    if encoder is not None:
        config.encoder = encoder
    return config
