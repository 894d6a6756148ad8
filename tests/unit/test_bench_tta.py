"""bench/tta.py on a synthetic dataset: each checkpoint scored with and without the flip, once (by its sha256)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.ml


def test_a_checkpoint_is_scored_both_ways_once_and_summarised(tmp_path: Path) -> None:
    import torch

    from bench.tta import score, summary
    from ml import checkpoint
    from ml.network import build_model
    from ml.synthetic import write_synthetic_dataset

    torch.set_num_threads(1)
    data = tmp_path / "data"
    write_synthetic_dataset(data, count=8, size=48, seed=3, val_fraction=0.5)
    torch.manual_seed(0)
    net = build_model("lite0", 9, False, pretrained=False)
    model = tmp_path / "m.pt"
    config = {"encoder": "lite0", "num_classes": 9, "decoder_dropout": False, "amp": False}
    checkpoint.save({"config": config, "modules": {"model": net.state_dict()}, "predict_with": ["model"]}, model)
    results = tmp_path / "results"
    first = score(model, "untrained", data=data, results=results)
    assert set(first) >= {"plain", "flip", "sha256"} and first["plain"]["miou"] != first["flip"]["miou"]
    (stored,) = results.glob("*.json")
    stamp = stored.stat().st_mtime_ns
    assert score(model, "untrained", data=data, results=results) == first and stored.stat().st_mtime_ns == stamp
    text = summary(results)
    assert "| untrained |" in text and "over 1 checkpoints" in text
    assert (results / "summary.md").read_text() == text
