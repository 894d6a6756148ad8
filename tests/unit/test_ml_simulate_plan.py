"""Budget arithmetic, configuration round-trip and the plot, without training anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.simulate import (
    SimulationConfig,
    build_train_config,
    config_key,
    curves,
    plot,
    query_sizes,
    resolve_count,
)


def test_resolve_count_counts_and_percentages() -> None:
    assert resolve_count("21", 2100) == 21
    assert resolve_count("1%", 2100) == 21
    assert resolve_count("3%", 2100) == 63
    assert resolve_count("100%", 2100) == 2100
    assert resolve_count(5000, 2100) == 2100
    with pytest.raises(ValueError):
        resolve_count("-1", 10)


def test_query_sizes_split_evenly_with_remainder_last() -> None:
    assert query_sizes(21, 63, 2) == [21, 21]
    assert query_sizes(85, 169, 4) == [21, 21, 21, 21]
    assert query_sizes(10, 21, 3) == [3, 3, 5]
    assert query_sizes(63, 63, 0) == []
    with pytest.raises(ValueError):
        query_sizes(63, 21, 1)
    with pytest.raises(ValueError):
        query_sizes(21, 63, 0)


def test_train_config_from_profile_and_warm_start(tmp_path: Path) -> None:
    config = SimulationConfig(data=tmp_path, out=tmp_path / "o", method="cps-mars", strategy="bald", steps=100)
    cold = build_train_config(config, 9, round_index=0, warm=True)
    warm = build_train_config(config, 9, round_index=1, warm=True)
    assert cold.steps == 100 and warm.steps == 20
    assert cold.decoder_dropout and cold.num_classes == 9 and cold.crop_size == 128
    # The cpu profile's SSL burn-in and ramp-up apply to cold starts only.
    assert cold.options == {"burn_in": 0.5, "unsup_rampup": 0.2}
    assert warm.options == {"burn_in": 0.0, "unsup_rampup": 0.0}
    s5 = SimulationConfig(data=tmp_path, out=tmp_path / "s", method="s5mars")
    assert build_train_config(s5, 9, 1, warm=True).options["ema_continue"] is True
    assert "ema_continue" not in build_train_config(s5, 9, 0, warm=True).options
    # The short cpu schedule's teacher averages over ~100 steps, in cold and warm rounds alike.
    assert {build_train_config(s5, 9, r, warm=True).options["ema_decay"] for r in (0, 1)} == {0.99}
    config.train_options = {"cps_weight": 1.0, "burn_in": 0.25}
    assert build_train_config(config, 9, 0, warm=False).options == {
        "burn_in": 0.25, "unsup_rampup": 0.2, "cps_weight": 1.0
    }  # fmt: skip
    config.warm_steps = 7
    assert build_train_config(config, 9, 2, warm=True).steps == 7
    assert build_train_config(config, 9, 2, warm=False).steps == 100
    paper = SimulationConfig(data=tmp_path, out=tmp_path, profile="paper", method="s5mars")
    assert build_train_config(paper, 9, 0, warm=False).crop_size == 512


def test_config_key_ignores_id_order_but_not_content(tmp_path: Path) -> None:
    config = SimulationConfig(data=tmp_path, out=tmp_path)
    train = build_train_config(config, 9, 0, warm=False)
    assert config_key(train, ["b", "a"], tmp_path) == config_key(train, ["a", "b"], tmp_path)
    assert config_key(train, ["a", "c"], tmp_path) != config_key(train, ["a", "b"], tmp_path)
    train.steps += 1
    assert config_key(train, ["a", "b"], tmp_path) != config_key(train, ["b", "a"], tmp_path.parent)


def test_config_json_round_trip(tmp_path: Path) -> None:
    config = SimulationConfig(data=tmp_path, out=tmp_path / "x", class_ids=(2, 3), val_data=tmp_path / "v")
    again = SimulationConfig.from_json(json.loads(json.dumps(config.to_json())))
    assert again == config


def _write_run(folder: Path, method: str, strategy: str, seed: int, points: list[tuple[int, float]]) -> None:
    folder.mkdir(parents=True)
    for r, (count, miou) in enumerate(points):
        record = {"round": r, "labeled_count": count, "miou": miou, "method": method, "strategy": strategy}
        (folder / f"round_{r:03d}.json").write_text(json.dumps(record | {"seed": seed}))


def test_curves_group_seeds_and_plot_writes_png(tmp_path: Path) -> None:
    _write_run(tmp_path / "ueq-seed0", "cps-mars", "ueq", 0, [(21, 0.5), (42, 0.6), (63, 0.7)])
    _write_run(tmp_path / "ueq-seed1", "cps-mars", "ueq", 1, [(21, 0.4), (42, 0.5), (63, 0.6)])
    _write_run(tmp_path / "random-seed0", "cps-mars", "random", 0, [(21, 0.5), (42, 0.55), (63, 0.58)])
    _write_run(tmp_path / "full-seed0", "supervised", "random", 0, [(2100, 0.76)])
    _write_run(tmp_path / "sup3-seed0", "supervised", "random", 0, [(63, 0.56)])
    runs = sorted(tmp_path.glob("*-seed*"))
    data = curves(runs)
    assert data["ueq"][63] == [0.7, 0.6] or data["ueq"][63] == [0.6, 0.7]
    assert data["full"] == {2100: [0.76]}
    assert data["sup3"] == {63: [0.56]}  # same method and strategy as "full", still its own line
    png = plot(runs, tmp_path / "plot" / "le.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot([tmp_path / "ueq-seed0"], tmp_path / "none.png", metric="miou_without_rock")
