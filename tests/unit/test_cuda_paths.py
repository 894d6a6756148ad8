"""The CUDA and mixed-precision paths (issue 12 item 5). Skipped where no CUDA device is present: CI has none.

On a GPU machine these run with `python -m pytest --noconftest tests/unit/test_cuda_paths.py` (they need nothing of
the server, so no database): every method trains under bf16 autocast with channels-last tensors, a checkpoint written
on the GPU is scored on the CPU by `marslabel evaluate` with the figure the GPU run recorded, and prediction under
autocast agrees with float32.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.ml,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, count=20, size=64, seed=3, val_fraction=0.25)
    return root


def _simulate(dataset: Path, out: Path, method: str, strategy: str, self_training: bool = False) -> list[dict]:
    from ml.simulate import SimulationConfig, run_simulation

    config = SimulationConfig(
        data=dataset,
        out=out,
        method=method,
        strategy=strategy,
        initial="4",
        budget="7",
        rounds=1,
        steps=4,
        warm_steps=2,
        crop_size=64,
        device="cuda",
        self_training=self_training,
        self_training_steps=3 if self_training else None,
    )
    return run_simulation(config)


def test_autocast_on_cuda_computes_in_bfloat16() -> None:
    from ml.network import autocast_context, build_model, prepare_for_device

    device = torch.device("cuda")
    net = prepare_for_device(build_model(num_classes=9, pretrained=False), device)
    x = torch.rand(2, 3, 64, 64, device=device).contiguous(memory_format=torch.channels_last)
    with autocast_context(device, True):
        logits = net(x)
    assert logits.dtype == torch.bfloat16
    with autocast_context(device, False):
        assert net(x).dtype == torch.float32


@pytest.mark.parametrize(
    ("method", "strategy", "self_training"),
    [("supervised", "entropy", True), ("cps-mars", "ueq", True), ("s5mars", "ueq", False)],
)
def test_every_method_trains_scores_and_self_trains_on_cuda_with_amp(
    dataset: Path, tmp_path: Path, method: str, strategy: str, self_training: bool
) -> None:
    records = _simulate(dataset, tmp_path / method, method, strategy, self_training)
    assert [r["labeled_count"] for r in records] == [4, 7]
    for record in records:
        assert math.isfinite(record["miou"])
        train = record["train_config"]
        assert train["amp"] is True and train["device"] == "cuda"
    assert Path(records[-1]["checkpoint"]).is_file()


def test_a_checkpoint_trained_on_cuda_scores_the_same_on_the_cpu(dataset: Path, tmp_path: Path) -> None:
    from ml.cli import main

    records = _simulate(dataset, tmp_path / "run", "cps-mars", "random")
    out = tmp_path / "eval.json"
    code = main(
        ["evaluate", "--model", records[-1]["checkpoint"], "--data", str(dataset), "--split", "val",
         "--out", str(out), "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    # The GPU evaluated under bf16 autocast, the CPU in float32: a few boundary pixels may differ.
    assert result["miou"] == pytest.approx(records[-1]["miou"], abs=0.02)


def test_prediction_under_autocast_agrees_with_float32() -> None:
    from ml.network import build_model
    from ml.predict import ModelPredictor

    torch.manual_seed(0)
    net = build_model(num_classes=9, pretrained=False).eval()
    images = np.random.default_rng(0).integers(0, 255, size=(4, 64, 64, 3), dtype=np.uint8)
    device = torch.device("cuda")
    fp32 = ModelPredictor([net], 9, device, amp=False).predict_proba(images)
    bf16 = ModelPredictor([net], 9, device, amp=True).predict_proba(images)
    assert fp32.shape == bf16.shape
    assert (fp32.argmax(1) == bf16.argmax(1)).mean() > 0.95
