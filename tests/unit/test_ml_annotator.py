"""The simulated annotator on synthetic scenes with known regions: the number and kind of actions it needs,
where it clicks, determinism, and the `simulate-annotator` command's outputs and error paths.

Tests marked with the `sam` fixture use the pinned ONNX pair (tests/sam_support.py: a failure, never a skip,
when the files are missing); the others run the annotator without SAM (fill and brush only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.annotator import (
    AnnotatorConfig,
    SimulatedAnnotator,
    actions_to_reach,
    agreement,
    interior_point,
    largest_error_region,
    summarise,
)
from ml.cli import main as ml_main
from ml.sam.decoder import OnnxSam
from ml.sam.scenes import disc_scene
from tests.sam_support import require_models

BACKGROUND, DISC, OTHER = 0, 1, 2


def disc_and_background(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """256×256 scene: a bright disc of radius 50 (12% of the image) on textured ground; oracle 0 = ground,
    1 = disc, and a strip of unlabelled (255) pixels along the top."""
    image, disc = disc_scene(256, 256, (128, 140), 50, seed=seed)
    oracle = np.where(disc, DISC, BACKGROUND).astype(np.uint8)
    oracle[:8] = 255
    return image, oracle


@pytest.fixture(scope="module")
def sam() -> OnnxSam:
    paths = require_models()
    return OnnxSam(paths.encoder, paths.decoder, threads=1)


# ------------------------------------------------------------------------------------ without SAM


def test_agreement_counts_only_labelled_pixels() -> None:
    oracle = np.array([[0, 1], [255, 255]], np.uint8)
    assert agreement(np.array([[0, 0], [7, 7]], np.uint8), oracle) == 0.5
    assert agreement(np.full((2, 2), 255, np.uint8), np.full((2, 2), 255, np.uint8)) == 1.0


def test_a_perfect_start_costs_no_action() -> None:
    image, oracle = disc_and_background()
    result = SimulatedAnnotator(None).annotate("scene", image, oracle, start=oracle.copy())
    assert result.total_actions == 0 and result.agreement_after == [] and result.final_agreement == 1.0
    assert result.reached_target and sum(result.actions.values()) == 0


def test_a_mask_off_by_one_region_costs_one_fill() -> None:
    image, oracle = disc_and_background()
    start = oracle.copy()
    start[200:230, 20:60] = OTHER  # one wrong block inside the ground
    config = AnnotatorConfig(target=1.0)
    result = SimulatedAnnotator(None, config).annotate("scene", image, oracle, start=start)
    assert result.action_sequence == ["fill"] and result.final_agreement == 1.0


def test_the_click_point_lies_inside_the_largest_error_region() -> None:
    oracle = np.zeros((64, 64), np.uint8)
    oracle[5:15, 5:15] = 1  # 100 pixels
    oracle[30:60, 20:50] = 2  # 900 pixels: the largest error from an empty... of a mask that has class 0 right
    mask = np.zeros_like(oracle)
    found = largest_error_region(mask, oracle)
    assert found is not None
    region, value = found
    assert value == 2 and int(region.sum()) == 900
    row, col = interior_point(region)
    assert region[row, col] and (row, col) in {(44, 34), (44, 35), (45, 34), (45, 35)}


def test_the_interior_point_keeps_off_the_image_border() -> None:
    region = np.zeros((40, 40), bool)
    region[:, :20] = True  # touches three borders
    row, col = interior_point(region)  # 10 pixels from the edge along a band of rows: the first in raster order
    assert col in (9, 10) and row == 9


def test_fill_and_brush_alone_reach_the_target_from_empty() -> None:
    image, oracle = disc_and_background()
    result = SimulatedAnnotator(None).annotate("scene", image, oracle)
    assert result.action_sequence[0] == "fill"  # the ground, flooded on the empty mask
    assert result.reached_target and result.final_agreement >= 0.9
    assert set(result.action_sequence) <= {"fill", "brush"} and result.decodes == 0
    assert result.agreement_after == sorted(result.agreement_after)  # no action made it worse


def test_the_action_cap_stops_the_annotator() -> None:
    rng = np.random.default_rng(0)
    oracle = rng.integers(0, 3, (32, 32)).astype(np.uint8)  # salt and pepper: one pixel per action at best
    image = np.zeros((32, 32, 3), np.uint8)
    result = SimulatedAnnotator(None, AnnotatorConfig(max_actions=5)).annotate("noise", image, oracle)
    assert result.total_actions == 5 and not result.reached_target
    summary = summarise([result], cap=5)
    assert summary["noc@90"] == 5 and summary["missed@90"] == 1.0
    assert actions_to_reach(result, 0.1, cap=5) == 1


# --------------------------------------------------------------------------------------- with SAM


def test_disc_and_background_from_empty_takes_fill_click_commit(sam: OnnxSam) -> None:
    image, oracle = disc_and_background()
    result = SimulatedAnnotator(sam).annotate("scene", image, oracle)
    # the ground is flooded (88% agreement, below the 90% target), then one click on the disc and Enter
    assert result.action_sequence == ["fill", "click_positive", "commit"]
    assert result.reached_target and result.final_agreement > 0.97 and result.decodes == 1
    x, y, label = result.clicks[0]
    assert label == 1 and oracle[int(y), int(x)] == DISC
    summary = summarise([result], cap=30)
    assert summary["noc@85"] == 1 and summary["noc@90"] == 3  # the fill alone gives 88% and summary["missed@90"] == 0.0


def test_a_missed_disc_costs_one_sam_correction(sam: OnnxSam) -> None:
    image, oracle = disc_and_background()
    start = np.where(oracle == 255, 255, BACKGROUND).astype(np.uint8)  # the model saw no disc
    result = SimulatedAnnotator(sam, AnnotatorConfig(target=0.97)).annotate("scene", image, oracle, start=start)
    assert result.action_sequence == ["click_positive", "commit"] and result.reached_target


def test_sam_only_tools_click_instead_of_filling(sam: OnnxSam) -> None:
    image, oracle = disc_and_background()
    result = SimulatedAnnotator(sam, AnnotatorConfig(use_fill=False)).annotate("scene", image, oracle)
    assert "fill" not in result.action_sequence and result.actions["click_positive"] >= 1
    assert result.total_actions <= 30 and result.agreement_after[-1] == result.final_agreement


def test_two_runs_are_equal(sam: OnnxSam) -> None:
    image, oracle = disc_and_background(seed=3)
    start = oracle.copy()
    start[100:180, 90:170] = BACKGROUND  # most of the disc missed
    start[20:40, 20:200] = OTHER
    runs = [SimulatedAnnotator(sam).annotate("scene", image, oracle, start=start).to_json() for _ in range(2)]
    for run in runs:
        run.pop("seconds"), run.pop("encode_seconds")
    assert runs[0] == runs[1]


def test_embeddings_are_computed_once_per_image(sam: OnnxSam) -> None:
    image, oracle = disc_and_background()
    annotator = SimulatedAnnotator(sam)
    first = annotator.annotate("scene", image, oracle)
    second = annotator.annotate("scene", image, oracle)
    assert first.encode_seconds > 0 and second.encode_seconds == 0
    assert first.action_sequence == second.action_sequence


# --------------------------------------------------------------------------------------------- CLI


def write_dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "splits").mkdir()
    classes = [{"id": i, "name": n, "color": [i * 80, 0, 0]} for i, n in enumerate(["ground", "disc", "other"])]
    (root / "classes.json").write_text(json.dumps({"ignore_index": 255, "classes": classes}))
    for index in range(3):
        image, oracle = disc_and_background(seed=index)
        Image.fromarray(image).save(root / "images" / f"s{index}.png")
        Image.fromarray(oracle).save(root / "labels" / f"s{index}.png")
    (root / "splits" / "val.txt").write_text("s0\ns1\n")
    return root


def test_cli_writes_json_and_plot_without_sam(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["simulate-annotator", "--data", str(data), "--split", "val", "--tools", "manual", "--out", str(out)]
    assert ml_main(argv) == 0
    written = json.loads((out / "annotator_effort.json").read_text())
    assert [r["image_id"] for r in written["images"]] == ["s0", "s1"]
    summary = written["summary"]
    assert summary["images"] == 2 and summary["noc@90"] >= 1 and len(summary["mean_agreement_curve"]) == 31
    assert (out / "annotator_effort.png").stat().st_size > 1000
    assert "noc@90" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "{missing}"], "does not exist"),
        (["--data", "{data}", "--split", "nope"], "split 'nope' not found"),
        (["--data", "{data}", "--start", "model", "--model", "{data}/classes.json"], "not a marslabel checkpoint"),
        (["--data", "{data}", "--start", "model"], "--start model needs --model"),
        (["--data", "{data}", "--target", "1.5"], "--target"),
    ],
)
def test_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    data = write_dataset(tmp_path / "data")
    argv = [a.format(data=data, missing=tmp_path / "missing") for a in extra]
    assert ml_main(["simulate-annotator", "--tools", "manual", "--out", str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- effort in simulate


def test_plot_draws_effort_from_empty_and_from_the_model(tmp_path: Path) -> None:
    from ml.simulate import curves, plot

    run = tmp_path / "cps-ueq-seed0"
    run.mkdir()
    for index, (count, empty, model) in enumerate([(4, 6.0, 3.0), (7, 5.0, 2.0)]):
        record = {"round": index, "labeled_count": count, "effort": {"from_empty": empty, "from_model": model}}
        (run / f"round_{index:03d}.json").write_text(json.dumps(record))
    (run / "round_002.json").write_text(json.dumps({"round": 2, "labeled_count": 10, "miou": 0.5}))
    assert curves([run], "effort") == {
        "cps-ueq from empty": {4: [6.0], 7: [5.0]},
        "cps-ueq from model": {4: [3.0], 7: [2.0]},
    }
    assert plot([run], tmp_path / "effort.png", metric="effort").stat().st_size > 1000


@pytest.mark.ml
def test_simulate_with_effort_records_it_per_round(tmp_path: Path, sam: OnnxSam) -> None:
    import torch

    from ml.simulate import SimulationConfig, run_simulation
    from ml.synthetic import write_synthetic_dataset

    torch.set_num_threads(1)
    data = tmp_path / "data"
    write_synthetic_dataset(data, count=12, size=64, seed=3, val_fraction=0.25)
    config = SimulationConfig(
        data=data, out=tmp_path / "run", initial="3", budget="5", rounds=1, steps=1, crop_size=64, device="cpu",
        method="supervised", strategy="random", effort=True,
    )  # fmt: skip
    first, last = run_simulation(config)
    effort = first["effort"]
    assert effort["images"] == 2 and set(effort["from_empty_actions"]) == set(first["queried_ids"])
    assert effort["from_empty"] >= 1 and effort["from_model"] >= 0
    assert effort["from_model_summary"]["images"] == 2 and effort["checkpoint"] == first["checkpoint"]
    assert "effort" not in last  # the final round picks nothing
