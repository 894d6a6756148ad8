"""Training: CPS gradients, EMA teacher, loss going down, progress/cancel, checkpoints and resume."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ml.data import InMemorySource, WeakAugDataset
from ml.interfaces import Cancelled, TrainConfig
from ml.predict import load_predictor
from ml.ssl import METHODS, train
from ml.ssl.engine import merged_options
from ml.ssl.method import MethodContext, StepBatch
from ml.ssl.s5mars import ema_decay, ema_update
from ml.synthetic import generate_scene

torch.set_num_threads(2)
pytestmark = pytest.mark.ml
SIZE = 64


@pytest.fixture(scope="module")
def scenes() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {f"s{i}": generate_scene(i, SIZE) for i in range(8)}


def _sources(scenes: dict) -> tuple[InMemorySource, InMemorySource, InMemorySource]:
    labelled = ["s0", "s1"]
    val = ["s6", "s7"]
    lab = InMemorySource({k: scenes[k][0] for k in labelled}, {k: scenes[k][1] for k in labelled})
    pool = InMemorySource({k: scenes[k][0] for k in scenes if k not in val})  # includes s0, s1; no labels
    return lab, pool, InMemorySource({k: scenes[k][0] for k in val}, {k: scenes[k][1] for k in val})


def _config(method: str, steps: int, **options: object) -> TrainConfig:
    return TrainConfig(
        method=method, crop_size=SIZE, scale_range=(1.0, 1.0), batch_labeled=2, batch_unlabeled=2,
        steps=steps, device="cpu", seed=0, options=dict(options),
    )  # fmt: skip


def _method(name: str, config: TrainConfig) -> object:
    cls = METHODS[name]
    ctx = MethodContext(config, torch.device("cpu"), torch.ones(config.num_classes), merged_options(config, cls), 4)
    return cls(ctx, pretrained=True)


def _step_batch(scenes: dict, label_value: int | None = None) -> StepBatch:
    lab, pool, _ = _sources(scenes)
    labelled = WeakAugDataset(lab, SIZE, (1.0, 1.0), 0, 1).batch(0, 2)
    if label_value is not None:
        labelled.label.fill_(label_value)
    unlabelled = WeakAugDataset(pool, SIZE, (1.0, 1.0), 0, 2, label_source=lab).batch(0, 2)
    return StepBatch(labelled, unlabelled)


def test_cps_term_sends_gradients_to_both_branches(scenes: dict) -> None:
    method = _method("cps-mars", _config("cps-mars", 10))
    batch = _step_batch(scenes, label_value=255)  # no supervised signal: only the CPS term is left
    batch.unlabeled.label.fill_(255)
    loss, parts = method.loss(batch, 0, np.random.default_rng(0))
    assert parts["sup"] == 0.0 and parts["cps"] > 0.0
    loss.backward()
    for branch in method.branches:
        head = branch.model.segmentation_head[0].weight.grad
        stem = branch.model.encoder.model.conv_stem.weight.grad
        assert head is not None and head.abs().sum() > 0
        assert stem is not None and stem.abs().sum() > 0


def test_ema_update_matches_its_formula() -> None:
    torch.manual_seed(0)
    student = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    teacher = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    student.train()(torch.randn(2, 3, 8, 8))  # moves the student's BN running statistics
    student[1].num_batches_tracked.fill_(7)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ema_update(teacher, student, 0.9)
    for key, value in teacher.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert int(value) == 7
        else:
            expected = 0.9 * before[key] + 0.1 * student.state_dict()[key]
            assert torch.allclose(value, expected, atol=1e-6), key
    assert not torch.allclose(before["1.running_mean"], teacher.state_dict()["1.running_mean"])
    ema_update(teacher, student, 0.0)  # warm-up: the teacher mirrors the student
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, student.state_dict()[key]), key


def test_ema_decay_schedule() -> None:
    assert ema_decay(0, warmup_steps=5) == 0.0 and ema_decay(4, warmup_steps=5) == 0.0
    assert ema_decay(5, warmup_steps=5) == pytest.approx(1 - 1 / 6)
    assert ema_decay(10_000, warmup_steps=5) == 0.996


def test_ema_continue_keeps_the_teacher_at_full_decay() -> None:
    """A warm-started S5Mars round moves its loaded teacher by (1 − 0.996) of the gap on its first step, where
    the restarted schedule (decay 0 in warm-up) would copy the student into it."""
    restarted = _method("s5mars", _config("s5mars", 10))
    continued = _method("s5mars", _config("s5mars", 10, ema_continue=True))
    for method in (restarted, continued):
        with torch.no_grad():
            for p in method.teacher.parameters():
                p.add_(1.0)  # a teacher that differs from the student, as a loaded one does
    gap = {k: (v - continued.student.state_dict()[k]).float() for k, v in continued.teacher.state_dict().items()}
    restarted.after_step(0)
    continued.after_step(0)
    name = next(k for k in gap if k.endswith("weight"))
    assert torch.equal(restarted.teacher.state_dict()[name], restarted.student.state_dict()[name])
    moved = continued.teacher.state_dict()[name] - continued.student.state_dict()[name]
    assert torch.allclose(moved, 0.996 * gap[name], atol=1e-5)


@pytest.mark.parametrize("method", ["supervised", "cps-mars", "s5mars"])
def test_short_run_lowers_the_supervised_loss(method: str, scenes: dict, tmp_path: Path) -> None:
    lab, pool, val = _sources(scenes)
    config = _config(method, 10)
    config.encoder_lr = 1e-3
    result = train(config, lab, pool, val, checkpoint_path=tmp_path / "run.pt")
    steps = [r for r in result.history if "loss" in r]
    assert [r["step"] for r in steps] == list(range(10))
    first = np.mean([r["sup"] for r in steps[:3]])
    last = np.mean([r["sup"] for r in steps[-3:]])
    assert last < 0.85 * first, (first, last)
    if method != "supervised":
        assert set(steps[0]) > {"sup", "loss"}  # an unsupervised term was trained too
    metrics = result.metrics
    assert 0.0 <= metrics["miou"] <= 1.0 and metrics["labeled_count"] == 2 and metrics["steps"] == 10
    assert set(metrics["per_class_iou"]) >= {0, 1, 2, 3, 4, 5}
    assert result.images_per_second > 0
    predictor = load_predictor(tmp_path / "run.pt", device="cpu")
    assert len(predictor.models) == (2 if method == "cps-mars" else 1)
    probs = predictor.predict_proba(np.stack([scenes["s6"][0]]))
    assert probs.shape == (1, 9, SIZE, SIZE)


def test_ssl_method_without_pool_trains_supervised_only(scenes: dict, tmp_path: Path) -> None:
    lab, _, _ = _sources(scenes)
    result = train(_config("s5mars", 2), lab, None, None, checkpoint_path=tmp_path / "run.pt")
    assert all(set(r) == {"step", "loss", "sup", "lr", "seconds"} for r in result.history)
    assert "miou" not in result.metrics and result.metrics["steps"] == 2


@pytest.mark.parametrize("method", ["cps-mars", "s5mars"])
def test_burn_in_steps_train_on_labelled_images_only(method: str, scenes: dict, tmp_path: Path) -> None:
    lab, pool, _ = _sources(scenes)
    result = train(_config(method, 4, burn_in=0.5), lab, pool, None, checkpoint_path=tmp_path / "run.pt")
    steps = [r for r in result.history if "loss" in r]
    assert [set(r) - {"step", "loss", "lr", "seconds"} for r in steps[:2]] == [{"sup"}, {"sup"}]
    assert all(len(set(r) - {"step", "loss", "lr", "seconds"}) > 1 for r in steps[2:])
    # Burn-in steps take no unlabelled batch: 2 steps × 2 labelled + 2 steps × (2 + 2).
    assert result.images_per_second > 0
    saved = torch.load(tmp_path / "run.pt", weights_only=False)
    assert saved["images_trained"] == 2 * 2 + 2 * 4


def test_unsupervised_weight_ramps_up_after_the_burn_in() -> None:
    method = _method("cps-mars", _config("cps-mars", 100, burn_in=0.2, unsup_rampup=0.4))
    assert [method.uses_pool_at(s) for s in (0, 19, 20, 99)] == [False, False, True, True]
    ramp = [method.unsup_ramp(s) for s in range(20, 100)]
    assert ramp[0] == pytest.approx(np.exp(-5 * (1 - 1 / 40) ** 2))
    assert all(a <= b for a, b in itertools.pairwise(ramp))
    assert ramp[39] == 1.0 and ramp[-1] == 1.0
    assert _method("cps-mars", _config("cps-mars", 100)).unsup_ramp(0) == 1.0


def test_cancel_then_resume_continues_the_step_count(scenes: dict, tmp_path: Path) -> None:
    lab, pool, _ = _sources(scenes)
    path = tmp_path / "run.pt"
    config = _config("supervised", 6, checkpoint_every=2)
    reported: list[int] = []

    def cancel_from_step_three(fraction: float, message: str) -> None:
        # Progress is rate-limited, so not every step is reported: stop at the first report from step 3 on.
        if message.startswith("step "):
            reported.append(int(message.split()[1].split("/")[0]))
            if reported[-1] >= 3:
                raise Cancelled

    with pytest.raises(Cancelled):
        train(config, lab, pool, None, checkpoint_path=path, progress=cancel_from_step_three)
    saved = torch.load(path, weights_only=False)
    assert saved["step"] == reported[-1] and 3 <= saved["step"] <= 6 and not saved["finished"]

    resumed = train(config, lab, pool, None, checkpoint_path=path)
    assert [r["step"] for r in resumed.history] == list(range(6))
    # The interrupted run ends exactly where an uninterrupted one does.
    straight = train(config, lab, pool, None, checkpoint_path=tmp_path / "straight.pt")
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in straight.history], rel=1e-4)

    # A finished checkpoint is returned as it is, without training.
    again = train(config, lab, pool, None, checkpoint_path=path)
    assert again.history == resumed.history and again.metrics == resumed.metrics
    with pytest.raises(ValueError, match="different configuration"):
        train(_config("supervised", 9), lab, pool, None, checkpoint_path=path)


def test_progress_is_reported_and_ends_at_one(scenes: dict, tmp_path: Path) -> None:
    lab, pool, val = _sources(scenes)
    fractions: list[float] = []
    train(_config("supervised", 3), lab, pool, val, checkpoint_path=tmp_path / "run.pt",
          progress=lambda f, m: fractions.append(f))  # fmt: skip
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)


def test_unknown_method_and_option_are_rejected(scenes: dict, tmp_path: Path) -> None:
    lab, pool, _ = _sources(scenes)
    with pytest.raises(ValueError, match="unknown method"):
        train(_config("mean-teacher", 1), lab, pool, None, checkpoint_path=tmp_path / "a.pt")
    with pytest.raises(ValueError, match="unknown options"):
        train(_config("cps-mars", 1, cps_wieght=2.0), lab, pool, None, checkpoint_path=tmp_path / "b.pt")


def test_ground_truth_in_the_pool_overrides_pseudo_labels(scenes: dict) -> None:
    batch = _step_batch(scenes)
    batch.unlabeled.label.fill_(255)
    batch.unlabeled.label[:, :, :20] = 3  # known sand on the left of every pool image
    cps = _method("cps-mars", _config("cps-mars", 10))
    _, target_1, target_2 = cps._mixed_unlabeled(batch, np.random.default_rng(0))
    for target in (target_1, target_2):
        known = torch.zeros_like(target, dtype=torch.bool)
        known[:, :, :20] = True  # the CutMix partner carries the same known region
        assert (target[known] == 3).all()
    s5 = _method("s5mars", _config("s5mars", 10))
    u = batch.unlabeled
    targets = s5._teacher_targets(u.image, u.label, u.valid)
    assert (targets.pseudo[:, :, :20] == 3).all() and (targets.conf[:, :, :20] == 1.0).all()
    assert (targets.conf[:, :, 20:] < 1.0).any()
