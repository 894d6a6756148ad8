"""End to end: two tiny simulation rounds on synthetic scenes, resume, shared round 0, evaluate CLI."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = pytest.mark.ml


@pytest.fixture(scope="module", autouse=True)
def _few_threads() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, count=20, size=64, seed=3, val_fraction=0.25)  # 15 pool, 5 val
    return root


def _config(dataset: Path, out: Path, strategy: str, cache: Path, **more):
    from ml.simulate import SimulationConfig

    return SimulationConfig(
        data=dataset,
        out=out,
        method="cps-mars",
        strategy=strategy,
        initial="4",
        budget="7",
        rounds=1,
        steps=2,
        warm_steps=1,
        crop_size=64,
        device="cpu",
        candidates=8,
        round_cache=cache,
        train_options={"checkpoint_every": 1},
        **more,
    )


@pytest.fixture(scope="module")
def ueq_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict]]:
    from ml.simulate import run_simulation

    base = tmp_path_factory.mktemp("runs")
    out, cache = base / "ueq", base / "cache"
    records = run_simulation(_config(dataset, out, "ueq", cache))
    return out, cache, records


def test_two_rounds_write_round_jsons(ueq_run: tuple[Path, Path, list[dict]]) -> None:
    out, _, records = ueq_run
    assert [r["round"] for r in records] == [0, 1]
    first, second = (json.loads((out / f"round_{r:03d}.json").read_text()) for r in (0, 1))
    assert first["labeled_count"] == 4 and second["labeled_count"] == 7
    assert len(first["queried_ids"]) == 3 and not set(first["queried_ids"]) & set(first["labeled_ids"])
    assert set(second["labeled_ids"]) == set(first["labeled_ids"]) | set(first["queried_ids"])
    assert second["queried_ids"] == []
    assert first["scored_count"] == 8  # the candidate subset, not the whole pool
    assert first["score_images_per_second"] > 0
    for record in (first, second):
        assert 0.0 <= record["miou"] <= 1.0
        assert record["val_images"] == 5
        assert record["per_class_iou"] and record["confusion"]
        assert record["train_seconds"] > 0 and record["seed"] == 0
        assert record["config"]["strategy"] == "ueq"
        assert record["train_config"]["method"] == "cps-mars"
        assert record["machine"]["torch_threads"] == torch.get_num_threads() >= 1
        assert record["machine"]["load_average_1m"] >= 0
    assert second["warm_start_from"] == first["checkpoint"]
    assert second["train_config"]["steps"] == 1


def test_rerun_resumes_without_redoing_finished_rounds(dataset: Path, ueq_run: tuple[Path, Path, list[dict]]) -> None:
    from ml.simulate import run_simulation

    out, cache, _ = ueq_run
    round0 = out / "round_000.json"
    round1 = out / "round_001.json"
    before0 = (round0.stat().st_mtime_ns, round0.read_text())
    checkpoint0 = Path(json.loads(round0.read_text())["checkpoint"])
    ckpt_mtime = checkpoint0.stat().st_mtime_ns
    saved1 = json.loads(round1.read_text())
    round1.unlink()  # as if the process died after round 0
    records = run_simulation(_config(dataset, out, "ueq", cache))
    assert (round0.stat().st_mtime_ns, round0.read_text()) == before0
    assert checkpoint0.stat().st_mtime_ns == ckpt_mtime
    redone = json.loads(round1.read_text())
    assert redone["labeled_ids"] == saved1["labeled_ids"]
    assert len(records) == 2


def test_changed_config_in_same_folder_is_refused(dataset: Path, ueq_run: tuple[Path, Path, list[dict]]) -> None:
    from ml.simulate import run_simulation

    out, cache, _ = ueq_run
    with pytest.raises(ValueError, match="different configuration"):
        run_simulation(_config(dataset, out, "entropy", cache))


def test_a_run_made_before_a_config_field_existed_resumes(
    dataset: Path, ueq_run: tuple[Path, Path, list[dict]]
) -> None:
    # Runs of earlier sessions lack fields added since (here `spread`); they read as the field's default.
    from ml.simulate import RUN_FILE, run_simulation

    out, cache, _ = ueq_run
    run_file = out / RUN_FILE
    saved = json.loads(run_file.read_text())
    del saved["spread"]
    run_file.write_text(json.dumps(saved))
    assert len(run_simulation(_config(dataset, out, "ueq", cache))) == 2
    saved["spread"] = True  # a saved value other than the current one is still a different configuration
    run_file.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="spread"):
        run_simulation(_config(dataset, out, "ueq", cache))
    del saved["spread"]
    run_file.write_text(json.dumps(saved))


def test_a_run_saved_under_a_renamed_field_resumes(dataset: Path, ueq_run: tuple[Path, Path, list[dict]]) -> None:
    # `round_cache` was `round0_cache` when only round 0 was shared; where the cache lives is not compared.
    from ml.simulate import RUN_FILE, SimulationConfig, run_simulation

    out, cache, _ = ueq_run
    run_file = out / RUN_FILE
    current = run_file.read_text()
    saved = json.loads(current)
    saved["round0_cache"] = str(cache.parent / "elsewhere")
    del saved["round_cache"]
    run_file.write_text(json.dumps(saved))
    try:
        assert len(run_simulation(_config(dataset, out, "ueq", cache))) == 2
        assert SimulationConfig.from_json(saved).round_cache == cache.parent / "elsewhere"
    finally:
        run_file.write_text(current)


def test_spread_batches_come_from_the_top_candidates(
    dataset: Path, ueq_run: tuple[Path, Path, list[dict]], tmp_path: Path
) -> None:
    from dataclasses import replace

    from ml.simulate import run_simulation

    _, cache, ueq_records = ueq_run
    records = run_simulation(replace(_config(dataset, tmp_path / "spread", "ueq", cache), spread=True))
    first = records[0]
    assert first["checkpoint"] == ueq_records[0]["checkpoint"]  # the same round-0 model and scores
    assert first["spread"] == {"batch": 3, "among": 8}  # 10 × 3 wanted, 8 candidates scored
    assert len(set(first["queried_ids"])) == 3 and not set(first["queried_ids"]) & set(first["labeled_ids"])
    assert records[1]["spread"] is None  # the last round queries nothing
    assert ueq_records[0]["spread"] is None


def test_changed_profile_in_same_folder_is_refused(
    dataset: Path, ueq_run: tuple[Path, Path, list[dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.profiles import PROFILES
    from ml.simulate import run_simulation

    out, cache, _ = ueq_run
    monkeypatch.setitem(PROFILES["cpu"]["cps-mars"], "options", {"burn_in": 0.25, "unsup_rampup": 0.2})
    with pytest.raises(ValueError, match="train_fingerprint"):
        run_simulation(_config(dataset, out, "ueq", cache))


def test_round0_model_is_shared_between_strategies(
    dataset: Path, ueq_run: tuple[Path, Path, list[dict]], tmp_path: Path
) -> None:
    from ml.simulate import run_simulation

    _, cache, ueq_records = ueq_run
    records = run_simulation(_config(dataset, tmp_path / "random", "random", cache))
    assert records[0]["round0_shared"] is True
    assert records[0]["checkpoint"] == ueq_records[0]["checkpoint"]
    assert records[0]["miou"] == ueq_records[0]["miou"]
    assert records[0]["labeled_ids"] == ueq_records[0]["labeled_ids"]
    assert records[1]["round0_shared"] is False
    # Round 1 trains on other labels (random's picks): its own model, not UEQ's.
    assert records[1]["shared_workdir"] != ueq_records[1]["shared_workdir"]
    assert records[1]["checkpoint"] != ueq_records[1]["checkpoint"]
    assert records[0]["score_seconds"] == 0.0  # random draws seeded scores, without a model


def _st_config(dataset: Path, out: Path, cache: Path, student_steps: int):
    return _config(dataset, out, "ueq", cache, self_training=True, self_training_steps=student_steps,
                   self_training_teacher="round")  # fmt: skip


def test_runs_that_differ_only_in_the_student_share_every_teacher(dataset: Path, tmp_path: Path) -> None:
    from ml.simulate import run_simulation

    cache = tmp_path / "cache"
    # The round's model teaches here: its pool predictions are what the two runs share.
    short = run_simulation(_st_config(dataset, tmp_path / "st2", cache, 2))
    teacher = Path(short[1]["warm_start_source"])
    predictions = sorted((teacher.parent / "predictions").iterdir())
    stamps = [teacher.stat().st_mtime_ns, *(p.stat().st_mtime_ns for p in predictions)]
    longer = run_simulation(_st_config(dataset, tmp_path / "st3", cache, 3))
    # Every round's model, the final teacher and its pool predictions come from the cache, untouched.
    assert [r["shared_workdir"] for r in longer] == [r["shared_workdir"] for r in short]
    assert all(r["shared_workdir"] is not None for r in longer)
    assert longer[0]["checkpoint"] == short[0]["checkpoint"]
    assert longer[1]["warm_start_source"] == str(teacher)
    assert [teacher.stat().st_mtime_ns, *(p.stat().st_mtime_ns for p in predictions)] == stamps
    assert longer[1]["pseudo_labels"]["teacher_miou"] == short[1]["pseudo_labels"]["teacher_miou"]
    # Each run has its own student beside the shared teacher.
    assert longer[1]["checkpoint"] != short[1]["checkpoint"]
    assert Path(longer[1]["checkpoint"]).parent == Path(short[1]["checkpoint"]).parent == teacher.parent
    assert longer[1]["train_config"]["steps"] == short[1]["train_config"]["steps"]


def test_cli_plot_and_evaluate_write_files(
    dataset: Path, ueq_run: tuple[Path, Path, list[dict]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli import main

    out, _, records = ueq_run
    png = tmp_path / "le.png"
    assert main(["plot", str(out), "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    result_file = tmp_path / "eval.json"
    code = main(
        ["evaluate", "--model", records[-1]["checkpoint"], "--data", str(dataset), "--split", "val",
         "--out", str(result_file), "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    result = json.loads(result_file.read_text())
    assert result["images"] == 5
    assert set(result) >= {"miou", "per_class_iou", "confusion", "pixel_accuracy", "class_names"}
    assert result["miou"] == pytest.approx(records[-1]["miou"])  # same model, same split, same protocol
    assert len(result["confusion"]) == 9
    assert '"miou"' in capsys.readouterr().out
    # --flip: the same model with test-time mirroring, named in the output.
    flipped_file = tmp_path / "eval-flip.json"
    argv = ["evaluate", "--model", records[-1]["checkpoint"], "--data", str(dataset), "--split", "val"]
    assert main([*argv, "--out", str(flipped_file), "--device", "cpu", "--flip"]) == 0
    flipped = json.loads(flipped_file.read_text())
    assert flipped["flip"] is True and result["flip"] is False and flipped["images"] == 5


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--st-generations", "0"], "must be at least 1"),
        (["--st-generations", "two"], "expected a whole number"),
        (["--st-options", "[1]"], "expected a JSON object"),
        (["--st-encoder-lr", "0"], "must be above 0"),
        (["--st-encoder-lr", "fast"], "expected a number"),
        (["--st-teacher-encoder-lr=-1e-3"], "must be above 0"),
        (["--st-teacher", "committee"], "invalid choice: 'committee'"),
        (["--initial-ids", "/nonexistent/ids.txt"], "cannot read the id file"),
    ],
)
def test_cli_refuses_bad_self_training_arguments(
    tmp_path: Path, args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--self-training", *args])
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_cli_refuses_an_empty_id_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ml.cli import main

    (tmp_path / "ids.txt").write_text("\n  \n")
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "simulate",
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "out"),
                "--initial-ids",
                str(tmp_path / "ids.txt"),
            ]
        )
    assert exited.value.code == 2
    assert "names no image" in capsys.readouterr().err


def test_a_given_first_set_and_a_supervised_teacher(
    dataset: Path, ueq_run: tuple[Path, Path, list[dict]], tmp_path: Path
) -> None:
    # A run can start from given ids (another run's final labels): the benchmark pairs a change of the final model
    # on the very labels the pipeline chose. Its last round taught by a supervised teacher trains no CPS model.
    from ml.data import open_dataset
    from ml.simulate import run_simulation

    _, cache, _ = ueq_run
    pool_ids = open_dataset(dataset, "pool").ids
    given = [pool_ids[9], pool_ids[2], pool_ids[5], pool_ids[12]]
    records = run_simulation(
        _config(
            dataset,
            tmp_path / "given",
            "ueq",
            cache,
            initial_ids=given,
            self_training=True,
            self_training_steps=2,
            self_training_teacher="supervised",
        )
    )
    assert records[0]["labeled_ids"] == sorted(given)
    last = records[-1]
    assert last["labeled_count"] == 7 and set(given) < set(last["labeled_ids"])
    assert last["pseudo_labels"]["teacher"] == "supervised" and last["seconds"]["train"] == 0.0
    assert last["train_config"]["method"] == "supervised" and last["config"]["initial_ids"] == given
    assert not (Path(last["checkpoint"]).parent / "train.pt").exists()
    assert last["train_seconds"] == last["seconds"]["teacher"] + last["seconds"]["student"]

    with pytest.raises(ValueError, match="initial_ids not in the pool: nope"):
        run_simulation(_config(dataset, tmp_path / "unknown", "ueq", cache, initial_ids=["nope", pool_ids[0]]))


def _one_self_trained_round(dataset: Path, out: Path, cache: Path):
    return replace(_config(dataset, out, "ueq", cache, self_training=True, self_training_steps=1), rounds=0, budget="4")


def test_a_self_trained_run_records_the_teacher_and_learning_rate_it_had(dataset: Path, tmp_path: Path) -> None:
    # No teacher or student encoder learning rate given: the profile's, written into the run file, so that a later
    # change of the default is a different configuration, not a silent one. A run file from before a field was made
    # with the round's model as teacher and 1e-4.
    from ml.profiles import SELF_TRAINING, SELF_TRAINING_TEACHER
    from ml.simulate import RUN_FILE, run_simulation

    out, cache = tmp_path / "st", tmp_path / "cache"
    config = _one_self_trained_round(dataset, out, cache)
    assert config.self_training_teacher is None and config.self_training_encoder_lr is None
    (record,) = run_simulation(config)
    saved = json.loads((out / RUN_FILE).read_text())
    assert saved["self_training_teacher"] == SELF_TRAINING_TEACHER["cpu"] == record["pseudo_labels"]["teacher"]
    assert saved["self_training_encoder_lr"] == SELF_TRAINING["cpu"]["encoder_lr"] == 1e-3
    assert saved["self_training_encoder"] == "lite0"  # the rounds'; the cpu profile names no student encoder

    # A run file from before the student's encoder was written: its student had the rounds' encoder.
    del saved["self_training_teacher"], saved["self_training_encoder_lr"]
    saved["self_training_encoder"] = None
    (out / RUN_FILE).write_text(json.dumps(saved))
    again = replace(_one_self_trained_round(dataset, out, cache), self_training_encoder_lr=1e-4)
    assert len(run_simulation(replace(again, self_training_teacher="round"))) == 1
    with pytest.raises(ValueError, match="self_training_teacher"):
        run_simulation(replace(again, self_training_teacher="supervised"))
    with pytest.raises(ValueError, match="self_training_encoder_lr"):
        run_simulation(replace(again, self_training_teacher="round", self_training_encoder_lr=None))
    with pytest.raises(ValueError, match=r"\(self_training_encoder\)"):
        run_simulation(replace(again, self_training_teacher="round", self_training_encoder="lite2"))

    # ... and before the teacher could pseudo-label with the mirrored image: it did not.
    saved = json.loads((out / RUN_FILE).read_text())
    assert saved["self_training_teacher_flip"] is False
    del saved["self_training_teacher_flip"]
    (out / RUN_FILE).write_text(json.dumps(saved))
    assert len(run_simulation(replace(again, self_training_teacher="round"))) == 1
    with pytest.raises(ValueError, match=r"\(self_training_teacher_flip\)"):
        run_simulation(replace(again, self_training_teacher="round", self_training_teacher_flip=True))


def test_a_self_trained_run_records_the_student_steps_it_had(dataset: Path, tmp_path: Path) -> None:
    # The student's steps left to the profile are the profile's, written into the run file; a run file that left
    # them to the cpu profile (null) was made when its student trained 600 steps.
    from ml.profiles import SELF_TRAINING
    from ml.simulate import RUN_FILE, SimulationConfig, run_simulation

    out, cache = tmp_path / "st", tmp_path / "cache"
    assert len(run_simulation(_one_self_trained_round(dataset, out, cache))) == 1

    def default() -> SimulationConfig:  # a new one each time: run_simulation writes the resolved steps into it
        return replace(_one_self_trained_round(dataset, out, cache), self_training_steps=None)

    saved = json.loads((out / RUN_FILE).read_text())
    assert saved["self_training_steps"] == 1
    saved["self_training_steps"] = SELF_TRAINING["cpu"]["steps"]
    (out / RUN_FILE).write_text(json.dumps(saved))
    assert len(run_simulation(default())) == 1  # nothing trained: the profile's steps are the file's

    saved["self_training_steps"] = None
    (out / RUN_FILE).write_text(json.dumps(saved))
    assert len(run_simulation(replace(default(), self_training_steps=600))) == 1
    assert SELF_TRAINING["cpu"]["steps"] != 600
    with pytest.raises(ValueError, match=r"\(self_training_steps\)"):
        run_simulation(default())


def test_the_cli_runs_a_student_whose_teacher_flips(dataset: Path, tmp_path: Path) -> None:
    from ml.cli import main
    from ml.simulate import RUN_FILE

    out = tmp_path / "out"
    tiny = ["--initial", "4", "--budget", "4", "--rounds", "0", "--steps", "2", "--crop", "64", "--st-steps", "1"]
    args = ["simulate", "--data", str(dataset), "--out", str(out), "--device", "cpu", "--self-training", *tiny]
    assert main([*args, "--st-teacher-flip"]) == 0
    assert json.loads((out / RUN_FILE).read_text())["self_training_teacher_flip"] is True
    (record,) = [json.loads(p.read_text()) for p in out.glob("round_*.json")]
    assert record["pseudo_labels"]["teacher_flip"] is True and "teacher_flip_miou" in record["pseudo_labels"]


def test_the_cli_runs_a_student_with_dropout_and_evaluate_predicts_without_it(dataset: Path, tmp_path: Path) -> None:
    # The student trains with decoder dropout; its checkpoint says so, and evaluate builds that network and predicts
    # in eval mode, so it gives the round's own figure again. A student without dropout, in the same round cache, is
    # another file (the dropout is part of the student's training config).
    from ml.checkpoint import load
    from ml.cli import main
    from ml.simulate import RUN_FILE

    cache = tmp_path / "cache"
    tiny = ["--initial", "4", "--budget", "4", "--rounds", "0", "--steps", "2", "--crop", "64", "--st-steps", "2"]
    base = ["simulate", "--data", str(dataset), "--device", "cpu", "--self-training", "--round-cache", str(cache)]
    assert main([*base, "--out", str(tmp_path / "drop"), *tiny, "--st-dropout"]) == 0
    assert main([*base, "--out", str(tmp_path / "plain"), *tiny]) == 0
    assert json.loads((tmp_path / "drop" / RUN_FILE).read_text())["self_training_dropout"] is True
    assert json.loads((tmp_path / "plain" / RUN_FILE).read_text())["self_training_dropout"] is False
    ((drop,), (plain,)) = (
        [json.loads(p.read_text()) for p in (tmp_path / name).glob("round_*.json")] for name in ("drop", "plain")
    )
    assert drop["checkpoint"] != plain["checkpoint"]
    assert load(drop["checkpoint"])["config"]["decoder_dropout"] is True
    assert load(plain["checkpoint"])["config"]["decoder_dropout"] is False
    result = tmp_path / "eval.json"
    argv = ["evaluate", "--model", drop["checkpoint"], "--data", str(dataset), "--split", "val", "--device", "cpu"]
    assert main([*argv, "--out", str(result)]) == 0
    assert json.loads(result.read_text())["miou"] == pytest.approx(drop["miou"])


def test_a_teacher_learning_rate_needs_a_supervised_teacher(dataset: Path, tmp_path: Path) -> None:
    from ml.simulate import run_simulation

    out = tmp_path / "st"
    config = replace(
        _one_self_trained_round(dataset, out, tmp_path / "cache"),
        self_training_teacher="round",
        self_training_teacher_encoder_lr=1e-3,
    )
    with pytest.raises(ValueError, match="a supervised teacher's; this run's teacher is its cps-mars"):
        run_simulation(config)
    assert not out.exists()  # refused before anything is written


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--st-encoder", "lite9"], "self_training_encoder: unknown encoder 'lite9'; choose one of"),
        (["--encoder", "vit"], "encoder: unknown encoder 'vit'"),
        (["--strategy", "coreset"], "strategy: unknown scoring strategy 'coreset'"),
        (["--st-teacher", "round", "--st-teacher-encoder-lr", "1e-3"], "this run's teacher is its cps-mars round"),
    ],
)
def test_cli_refuses_a_configuration_that_cannot_run(
    dataset: Path, tmp_path: Path, args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli import main

    out = tmp_path / "out"
    assert main(["simulate", "--data", str(dataset), "--out", str(out), "--self-training", *args]) == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"profile": "gpu"}, "profile: unknown profile 'gpu'; choose one of ['cpu', 'paper']"),
        ({"self_training_teacher": "committee"}, "self_training_teacher: unknown teacher 'committee'"),
        ({"self_training_encoder": "lite9"}, "self_training_encoder: unknown encoder 'lite9'"),
        ({"strategy": "coreset"}, "strategy: unknown scoring strategy 'coreset'; known: "),
    ],
)
def test_run_simulation_refuses_what_cannot_run_before_writing(
    tmp_path: Path, fields: dict[str, Any], named: str
) -> None:
    from ml.simulate import SimulationConfig, run_simulation

    out = tmp_path / "out"
    with pytest.raises(ValueError, match=re.escape(named)):
        run_simulation(SimulationConfig(data=tmp_path, out=out, self_training=True, **fields))
    assert not out.exists()


def test_a_student_with_its_own_encoder_is_recorded_and_evaluated(dataset: Path, tmp_path: Path) -> None:
    # The final model is the student, here a Lite2 one under Lite0 rounds: its checkpoint carries its encoder, so
    # evaluate loads it as it was trained.
    from ml.checkpoint import load
    from ml.cli import main
    from ml.simulate import RUN_FILE, run_simulation

    out = tmp_path / "st"
    config = replace(_one_self_trained_round(dataset, out, tmp_path / "cache"), self_training_encoder="lite2")
    (record,) = run_simulation(config)
    assert json.loads((out / RUN_FILE).read_text())["self_training_encoder"] == "lite2"
    assert load(record["checkpoint"])["config"]["encoder"] == "lite2"
    assert record["train_config"]["encoder"] == "lite0"  # the round's own model, which ranked the pool
    result = tmp_path / "eval.json"
    argv = ["evaluate", "--model", record["checkpoint"], "--data", str(dataset), "--split", "val", "--device", "cpu"]
    assert main([*argv, "--out", str(result)]) == 0
    assert json.loads(result.read_text())["miou"] == pytest.approx(record["miou"])
