"""The one round (ml.al_round): its callers have no loop of their own (its ranking rule is tested in
test_ml_selection); pseudo-labels respect the threshold and never replace human labels; class-balanced crops; a
round's checkpoint loads in `marslabel evaluate`."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from ml.data import InMemorySource, WeakAugDataset, weak_augment
from ml.pseudo import PseudoLabelSource, class_thresholds, pseudo_label

REPO = Path(__file__).resolve().parents[2]
# What only ml.al_round (and what it calls) may use: training, scoring, evaluating, ranking.
LOOP_NAMES = {"train", "score_pool_detailed", "score_pool", "evaluate_predictor", "select_top", "Trainer"}


class RoundData(NamedTuple):
    pool: Any  # ml.data sources (imported lazily: torch is only needed by the `ml` tests)
    val: Any
    labeled: Any  # the pool's first three images, with their labels
    unlabeled: list[str]


@pytest.fixture
def round_data(tmp_path: Path) -> RoundData:
    """A tiny synthetic dataset for whole rounds (real training, one thread): 3 labelled pool images, the rest
    unlabelled, and a val split."""
    import torch

    from ml.data import SubsetSource, open_dataset
    from ml.synthetic import write_synthetic_dataset

    torch.set_num_threads(1)
    write_synthetic_dataset(tmp_path / "data", count=12, size=64, seed=5, val_fraction=0.25)
    pool, val = open_dataset(tmp_path / "data", "pool"), open_dataset(tmp_path / "data", "val")
    return RoundData(pool, val, SubsetSource(pool, pool.ids[:3]), list(pool.ids[3:]))


def tiny_self_trained(method: str, strategy: str, **self_training: Any) -> Any:
    """RoundSettings of a 2-step round on 64² crops whose 2-step student keeps every pseudo-label (threshold 0)."""
    from ml.al_round import RoundSettings, SelfTrainingSettings

    st = SelfTrainingSettings(threshold=0.0, steps=2, crop_size=64, **self_training)
    return RoundSettings(method=method, strategy=strategy, steps=2, crop_size=64, device="cpu", score_size=None,
                         self_training=st)  # fmt: skip


def _imported_names(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text())
    modules, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
    return modules, names


@pytest.mark.parametrize("caller", ["ml/simulate.py", "worker/tasks/round.py"])
def test_simulator_and_worker_call_the_one_round_and_have_no_loop_of_their_own(caller: str) -> None:
    modules, names = _imported_names(REPO / caller)
    assert "ml.al_round.run_round" in names
    forbidden = {n for n in names if n.rsplit(".", 1)[-1] in LOOP_NAMES and not n.startswith("ml.al_round.")}
    assert not forbidden, f"{caller} imports its own training/scoring pieces: {forbidden}"
    assert not {"ml.ssl", "ml.scoring", "ml.metrics", "ml.ssl.engine"} & modules


def test_pseudo_label_ignores_pixels_under_the_threshold() -> None:
    probs = np.zeros((3, 2, 2), dtype=np.float32)
    probs[:, 0, 0] = [0.95, 0.03, 0.02]
    probs[:, 0, 1] = [0.5, 0.4, 0.1]
    probs[:, 1, 0] = [0.1, 0.9, 0.0]
    probs[:, 1, 1] = [0.0, 0.0, 1.0]
    label, confidence = pseudo_label(probs, 0.9)
    assert label.tolist() == [[0, 255], [1, 2]]
    assert confidence == pytest.approx((0.95 + 0.5 + 0.9 + 1.0) / 4)
    assert pseudo_label(probs, 0.0)[0].tolist() == [[0, 0], [1, 2]]


def _write_prediction(folder: Path, sample_id: str, label: np.ndarray, confidence: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    data = np.stack([label.astype(np.uint8), np.round(confidence * 255).astype(np.uint8)], axis=-1)
    Image.fromarray(data, mode="LA").save(folder / f"{sample_id}.png")


def test_pseudo_label_source_gives_human_labels_first_and_applies_thresholds(tmp_path: Path) -> None:
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    human_label = np.full((2, 2), 3, dtype=np.uint8)
    pool = InMemorySource({"a": image, "b": image, "c": image}, {"a": human_label, "b": human_label})
    human = InMemorySource({"a": image}, {"a": human_label})
    _write_prediction(tmp_path, "a", np.full((2, 2), 1), np.ones((2, 2)))  # never used: a is human
    _write_prediction(tmp_path, "b", np.array([[0, 1], [1, 2]]), np.array([[0.95, 0.5], [0.91, 0.6]]))
    source = PseudoLabelSource(pool, tmp_path, human, np.array([0.9, 0.9, 0.5, 0.9]))
    assert (source.load_label("a") == 3).all()  # the human label wins over a pseudo-label
    # the pseudo-label where its class's threshold is reached, never the pool's own (oracle) label
    assert source.load_label("b").tolist() == [[0, 255], [1, 2]]
    assert source.load_label("c") is None
    assert source.kept_fraction(["b"]) == 0.75


def test_class_thresholds_lower_the_bar_for_a_class_never_that_confident(tmp_path: Path) -> None:
    label = np.array([[0, 0, 0, 0], [1, 1, 1, 1]])
    confidence = np.array([[0.99, 0.98, 0.97, 0.96], [0.4, 0.5, 0.6, 0.7]])
    _write_prediction(tmp_path, "x", label, confidence)
    plain = class_thresholds(tmp_path, ["x"], 3, 0.9, None)
    assert plain.tolist() == [0.9, 0.9, 0.9]
    balanced = class_thresholds(tmp_path, ["x"], 3, 0.9, 0.5)
    assert balanced[0] == 0.9 and balanced[2] == 0.9  # a confident class and an absent one keep the threshold
    assert balanced[1] == pytest.approx(0.6, abs=1 / 255)  # the top half of class 1: 0.7 and 0.6


def test_self_training_refuses_a_pool_that_is_not_pseudo_labelled() -> None:
    from ml import ssl
    from ml.interfaces import TrainConfig

    image = np.zeros((32, 32, 3), dtype=np.uint8)
    labeled = InMemorySource({"a": image}, {"a": np.zeros((32, 32), dtype=np.uint8)})
    oracle_pool = InMemorySource({"b": image}, {"b": np.ones((32, 32), dtype=np.uint8)})
    config = TrainConfig(method="self-training", num_classes=3, steps=1, crop_size=32, device="cpu")
    with pytest.raises(ValueError, match="PseudoLabelSource"):
        ssl.train(config, labeled, oracle_pool, None, checkpoint_path=Path("/nonexistent/x.pt"))


def test_focus_crop_contains_the_focus_pixel() -> None:
    label = np.zeros((64, 64), dtype=np.uint8)
    label[58:62, 2:6] = 5  # a blob: one pixel may vanish when nearest-neighbour scaling shrinks the image
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        view = weak_augment(image, label, rng, 24, (0.75, 1.5), focus=(60, 3))
        assert (view.label == 5).any(), seed


def test_rare_crops_show_the_rare_class_far_more_often() -> None:
    label = np.zeros((96, 96), dtype=np.uint8)
    label[90:92, 90:92] = 3  # rare: 4 of 9,216 pixels
    source = InMemorySource({"x": np.zeros((96, 96, 3), dtype=np.uint8)}, {"x": label})
    weights = np.array([1.0, 1.0, 1.0, 40.0])

    def share(rare_crop: float) -> float:
        data = WeakAugDataset(source, 32, (1.0, 1.0), 0, 1, rare_crop=rare_crop, class_weights=weights)
        return float(np.mean([(data[k][1].label == 3).any() for k in range(60)]))

    assert share(1.0) == 1.0 and share(0.0) < 0.3


def test_a_spread_batch_is_ranked_first_and_the_rest_by_score() -> None:
    from ml.al_round import RoundResult
    from ml.interfaces import TrainConfig

    result = RoundResult(
        checkpoint=Path("m.pt"),
        teachers=(),
        train_config=TrainConfig(method="supervised"),
        model_config=TrainConfig(method="supervised"),
        trainer_metrics={},
        evaluation=None,
        scores={"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6},
        seconds={},
        score_info={},
        first=["c", "a"],
    )
    assert result.ranked() == [("c", 0.7, 1), ("a", 0.9, 2), ("b", 0.8, 3), ("d", 0.6, 4)]
    assert result.picks(2) == ["c", "a"]
    result.first = []
    assert result.picks(2) == ["a", "b"]


@pytest.mark.ml
def test_a_self_trained_round_ranks_with_its_teacher_and_scores_both_on_val(
    tmp_path: Path, round_data: RoundData
) -> None:
    # The benchmarked pipeline ranks with the method's model and self-trains only the model that labels the rest;
    # the service's self-trained rounds rank the same way, so the student never chooses what to label.
    from ml.al_round import evaluate, run_round, score

    pool, val, source, unlabeled = round_data
    settings = tiny_self_trained("supervised", "entropy")
    result = run_round(
        settings, labeled=source, pool=pool, unlabeled=unlabeled, val=val, num_classes=9, workdir=tmp_path / "round"
    )
    (teacher,) = result.teachers
    assert result.checkpoint != teacher
    by_teacher, _ = score(settings, teacher, pool, unlabeled, source, 9)
    by_student, _ = score(settings, result.checkpoint, pool, unlabeled, source, 9)
    assert result.scores == by_teacher != by_student
    # The teacher is also scored on the validation images, beside the student (the round's model).
    assert result.pseudo_info is not None and result.evaluation is not None
    assert result.pseudo_info["teacher_miou"] == evaluate(teacher, val, device="cpu")["miou"]
    assert result.evaluation["miou"] == evaluate(result.checkpoint, val, device="cpu")["miou"]


@pytest.mark.ml
def test_a_second_generation_learns_from_the_first_students_pseudo_labels(
    tmp_path: Path, round_data: RoundData
) -> None:
    # Noisy student: generation 2 is taught by generation 1's predictions, not the teacher's; generation 1 is the
    # very file a one-generation round makes, so the two share it in a round cache.
    from ml.al_round import evaluate, run_round
    from ml.pseudo import read_prediction

    pool, val, labeled, unlabeled = round_data

    def settings(generations: int) -> Any:
        # The students' pool batches are photometrically perturbed too (ST++) and get the rare-class paste, through
        # the real training loop.
        return tiny_self_trained(
            "supervised", "random", generations=generations, options={"photometric": True, "rare_paste": 1.0}
        )

    workdir = tmp_path / "round"
    one = run_round(settings(1), labeled=labeled, pool=pool, unlabeled=unlabeled, val=val, num_classes=9,
                    workdir=workdir, rank=False)  # fmt: skip
    assert one.pseudo_info is not None and "generations" not in one.pseudo_info
    two = run_round(settings(2), labeled=labeled, pool=pool, unlabeled=unlabeled, val=val, num_classes=9,
                    workdir=workdir, rank=False)  # fmt: skip
    assert two.pseudo_info is not None
    first, second = two.pseudo_info["generations"]
    assert first["checkpoint"] == one.checkpoint.name  # shared, not retrained
    assert second["checkpoint"] == two.checkpoint.name != one.checkpoint.name
    assert first["miou"] == evaluate(one.checkpoint, val, device="cpu")["miou"]
    assert "miou" not in second  # the last generation is the round's model: result.evaluation
    # Generation 2's pseudo-labels are generation 1's predictions.
    from ml.predict import load_predictor

    folder = workdir / f"predictions-{one.checkpoint.stem.removeprefix('student-')}"
    stored = read_prediction(folder, unlabeled[0])
    assert stored is not None
    probs = load_predictor(one.checkpoint, device="cpu").predict_proba(pool.load_image(unlabeled[0])[None])[0]
    assert np.array_equal(stored[0], probs.argmax(axis=0))
    assert two.seconds["student"] > 0 and two.model_config.method == "self-training"


def test_photometric_perturbation_keeps_geometry_and_range() -> None:
    import torch

    from ml.ssl.strong_aug import photometric

    rng = np.random.default_rng(0)
    flat = torch.full((4, 3, 16, 16), 100.0)
    flat[:, :, :, 8:] = 200.0  # a vertical edge
    jittered = photometric(flat, np.random.default_rng(1), p_jitter=1.0, p_blur=0.0)
    assert jittered.shape == flat.shape and float(jittered.min()) >= 0 and float(jittered.max()) <= 255
    # Contrast and brightness move grey levels, never pixels: the edge stays between columns 7 and 8.
    assert torch.all(jittered[:, :, :, :8] == jittered[:, :, :, :1]) and torch.all(
        jittered[:, :, :, 8:] == jittered[:, :, :, 8:9]
    )
    assert not torch.equal(jittered, flat)
    blurred = photometric(flat, rng, p_jitter=0.0, p_blur=1.0, sigma_range=(1.0, 1.0))
    # A blur far from the edge leaves the grey as it is; next to it, it mixes the two sides.
    assert torch.allclose(blurred[:, :, :, 0], torch.tensor(100.0), atol=1e-3) and float(blurred[0, 0, 0, 7]) > 101
    assert torch.equal(photometric(flat, rng, p_jitter=0.0, p_blur=0.0), flat)


@pytest.mark.ml
def test_a_supervised_teacher_teaches_the_student_while_the_method_model_ranks(
    tmp_path: Path, round_data: RoundData
) -> None:
    # ST++'s teacher: a model trained on the human labels alone pseudo-labels the pool; the method's model still
    # ranks it and stays what the next round warm-starts from. A last round (no ranking) does not train the
    # method's model at all.
    from ml import checkpoint
    from ml.al_round import evaluate, run_round, score

    pool, val, source, unlabeled = round_data

    def settings(teacher: str) -> Any:
        return tiny_self_trained("cps-mars", "entropy", teacher=teacher)

    ranked = run_round(
        settings("supervised"),
        labeled=source,
        pool=pool,
        unlabeled=unlabeled,
        val=val,
        num_classes=9,
        workdir=tmp_path / "round",
    )
    assert ranked.method_checkpoint is not None
    (teacher,) = ranked.teachers
    assert len({ranked.checkpoint, ranked.method_checkpoint, teacher}) == 3
    assert ranked.warm_start_source == ranked.method_checkpoint
    assert checkpoint.load(ranked.method_checkpoint)["config"]["method"] == "cps-mars"
    teacher_config = checkpoint.load(teacher)["config"]
    assert teacher_config["method"] == "supervised" and teacher_config["options"]["sup_loss"] == "wce+dice"
    assert ranked.scores == score(settings("supervised"), ranked.method_checkpoint, pool, unlabeled, source, 9)[0]
    assert ranked.pseudo_info is not None and ranked.pseudo_info["teacher"] == "supervised"
    assert ranked.pseudo_info["teacher_miou"] == evaluate(teacher, val, device="cpu")["miou"]
    assert {"train", "teacher", "student"} <= set(ranked.seconds)
    assert ranked.train_seconds == sum(ranked.seconds[k] for k in ("train", "teacher", "student"))

    last = run_round(
        settings("supervised"),
        labeled=source,
        pool=pool,
        unlabeled=unlabeled,
        val=val,
        num_classes=9,
        workdir=tmp_path / "last",
        rank=False,
    )
    assert last.method_checkpoint is None and last.seconds["train"] == 0.0 and last.scores == {}
    assert not (tmp_path / "last" / "train.pt").exists()
    assert last.train_config.method == "supervised" and last.model_config.method == "self-training"

    with pytest.raises(ValueError, match="unknown self-training teacher 'committee'"):
        run_round(
            settings("committee"),
            labeled=source,
            pool=pool,
            unlabeled=unlabeled,
            val=val,
            num_classes=9,
            workdir=tmp_path / "bad",
        )


@pytest.mark.ml
def test_an_ensemble_teacher_averages_the_method_model_and_a_supervised_model(
    tmp_path: Path, round_data: RoundData
) -> None:
    # The round's CPS model (rock) and a supervised model of the labels (soil, sand, bedrock) teach together: the
    # pool's pseudo-labels are their averaged probabilities, each checkpoint weighing the same whatever its number
    # of branches; a last round trains both.
    from ml import checkpoint
    from ml.al_round import evaluate, run_round
    from ml.network import build_model
    from ml.predict import load_predictor
    from ml.pseudo import read_prediction

    pool, val, source, unlabeled = round_data
    settings = tiny_self_trained("cps-mars", "ueq", teacher="ensemble")
    workdir = tmp_path / "round"
    last = run_round(settings, labeled=source, pool=pool, unlabeled=unlabeled, val=val, num_classes=9,
                     workdir=workdir, rank=False)  # fmt: skip
    cps, supervised = last.teachers
    assert cps == last.method_checkpoint == workdir / "train.pt"
    assert checkpoint.load(cps)["config"]["method"] == "cps-mars"
    assert checkpoint.load(supervised)["config"]["method"] == "supervised"
    assert last.pseudo_info is not None and last.pseudo_info["teacher"] == "ensemble"

    image = pool.load_image(unlabeled[0])[None]
    p_cps = load_predictor(cps, device="cpu").predict_proba(image)  # itself the mean of its two branches
    p_sup = load_predictor(supervised, device="cpu").predict_proba(image)
    p_both = load_predictor([cps, supervised], device="cpu").predict_proba(image)
    np.testing.assert_allclose(p_both, (p_cps + p_sup) / 2, atol=1e-6)
    stored = read_prediction(workdir / "predictions-ensemble-teacher", unlabeled[0])
    assert stored is not None and np.array_equal(stored[0], p_both[0].argmax(axis=0))

    # On val: the ensemble, and each member beside it.
    assert last.pseudo_info["teacher_miou"] == evaluate([cps, supervised], val, device="cpu")["miou"]
    members = last.pseudo_info["teacher_members"]
    assert [m["checkpoint"] for m in members] == [cps.name, supervised.name]
    assert members[1]["miou"] == evaluate(supervised, val, device="cpu")["miou"]

    # Networks of other class counts cannot be averaged: a clear error, not a shape mismatch in numpy.
    state = checkpoint.load(supervised)
    config = state["config"]
    other = build_model(config["encoder"], 4, bool(config["decoder_dropout"]), pretrained=False)
    (name,) = state["predict_with"]
    state["modules"][name] = other.state_dict()
    state["config"] = {**config, "num_classes": 4}
    checkpoint.save(state, tmp_path / "four.pt")
    with pytest.raises(ValueError, match="different class counts"):
        load_predictor([cps, tmp_path / "four.pt"], device="cpu")


def test_the_students_encoder_learning_rate_is_its_own() -> None:
    from ml.al_round import student_config, supervised_teacher_config, train_config
    from ml.simulate import SimulationConfig, round_settings

    def final(**more: Any) -> Any:
        config = SimulationConfig(data=Path("d"), out=Path("o"), self_training=True, **more)
        return round_settings(config, 3, final=True)

    default, faster = final(), final(self_training_encoder_lr=3e-4)
    assert student_config(default, 5).encoder_lr == 1e-3  # the profile's
    assert student_config(faster, 5).encoder_lr == 3e-4
    # Only the student's: the round's model and a supervised teacher keep the profile's.
    assert train_config(faster, 5, warm=False).encoder_lr == 1e-4
    assert supervised_teacher_config(faster, 5).encoder_lr == 1e-4
    # The supervised teacher's has its own setting, and it leaves the student's and the round's model's alone.
    taught = final(self_training_teacher_encoder_lr=1e-3, self_training_encoder_lr=3e-4)
    assert supervised_teacher_config(taught, 5).encoder_lr == 1e-3
    assert student_config(taught, 5).encoder_lr == 3e-4
    assert train_config(taught, 5, warm=False).encoder_lr == 1e-4
    # A supervised round's own model teaches as it is: the teacher's rate is its rate, in the final round only.
    supervised = final(method="supervised", self_training_teacher_encoder_lr=1e-3)
    assert train_config(supervised, 5, warm=False).encoder_lr == 1e-3
    ranking = round_settings(SimulationConfig(data=Path("d"), out=Path("o"), method="supervised", self_training=True,
                                              self_training_teacher_encoder_lr=1e-3), 0, final=False)  # fmt: skip
    assert train_config(ranking, 5, warm=False).encoder_lr == 1e-4


def test_the_student_may_have_its_own_encoder() -> None:
    from ml.al_round import student_config, supervised_teacher_config, train_config
    from ml.profiles import SELF_TRAINING
    from ml.simulate import SimulationConfig, round_settings

    def final(**more: Any) -> Any:
        config = SimulationConfig(data=Path("d"), out=Path("o"), self_training=True, **more)
        return round_settings(config, 3, final=True)

    # Rounds that name no encoder: the profile's student encoder, where it names one; neither profile does.
    default = final()
    assert "encoder" not in SELF_TRAINING["cpu"] and student_config(default, 5).encoder == "lite0"
    assert train_config(default, 5, warm=False).encoder == supervised_teacher_config(default, 5).encoder == "lite0"
    assert student_config(final(self_training_encoder="lite2"), 5).encoder == "lite2"
    # Rounds that name one: the student has it too, unless the self-training names its own.
    assert student_config(final(encoder="resnet50"), 5).encoder == "resnet50"
    assert student_config(final(encoder="lite0"), 5).encoder == "lite0"
    smaller = final(encoder="lite2", self_training_encoder="lite0")
    assert student_config(smaller, 5).encoder == "lite0"
    # The teacher, and the round's model that ranks the pool, keep the rounds' encoder.
    assert train_config(smaller, 5, warm=False).encoder == "lite2"
    assert supervised_teacher_config(smaller, 5).encoder == "lite2"


@pytest.mark.ml
def test_a_flipping_teacher_pseudo_labels_with_the_mirrored_image_in_a_folder_of_its_own(
    tmp_path: Path, round_data: RoundData
) -> None:
    # The teacher's stored pool predictions are its probabilities averaged with the mirrored image's, kept apart
    # from a plain teacher's in a shared workdir, and its student is another file; val records the teacher both ways.
    from ml.al_round import evaluate, run_round
    from ml.predict import load_predictor
    from ml.pseudo import read_prediction

    pool, val, source, unlabeled = round_data
    workdir = tmp_path / "round"

    def last_round(flip: bool) -> Any:
        settings = tiny_self_trained("supervised", "random", teacher_flip=flip)
        return run_round(settings, labeled=source, pool=pool, unlabeled=unlabeled, val=val, num_classes=9,
                         workdir=workdir, rank=False)  # fmt: skip

    plain, flipped = last_round(False), last_round(True)
    assert flipped.teachers == plain.teachers  # one teacher, read two ways
    assert flipped.checkpoint != plain.checkpoint and flipped.checkpoint.exists() and plain.checkpoint.exists()
    (teacher,) = flipped.teachers
    folder = workdir / "predictions-supervised-teacher-flip"
    assert folder.is_dir() and (workdir / "predictions-supervised-teacher").is_dir()
    image = pool.load_image(unlabeled[0])[None]
    probs = load_predictor(teacher, device="cpu", flip=True).predict_proba(image)[0]
    unflipped = load_predictor(teacher, device="cpu").predict_proba(image)[0]
    stored = read_prediction(folder, unlabeled[0])
    assert stored is not None and np.array_equal(stored[0], probs.argmax(axis=0))
    # The confidence stored is the averaged one (to its 1/255 step), which the plain prediction's is not.
    np.testing.assert_allclose(stored[1], probs.max(axis=0), atol=0.5 / 255 + 1e-6)
    assert np.abs(unflipped.max(axis=0) - probs.max(axis=0)).max() > 2 / 255

    info = flipped.pseudo_info
    assert info is not None and info["teacher_flip"] is True and "teacher_flip" not in (plain.pseudo_info or {})
    assert info["teacher_miou"] == plain.pseudo_info["teacher_miou"]  # type: ignore[index]
    assert info["teacher_flip_miou"] == evaluate(teacher, val, device="cpu", flip=True)["miou"]
