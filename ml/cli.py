"""`simulate`, `evaluate`, `plot` and `simulate-annotator` subcommands for the `marslabel` CLI.

`add_ml_commands(subparsers)` registers them on the main CLI's subparsers; `python -m ml.cli …` runs
them stand-alone. torch and the models are imported only inside the handlers, so building the parser
stays cheap.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated class ids, got {text!r}") from exc


def _id_file(text: str) -> list[str]:
    try:
        ids = [line.strip() for line in Path(text).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read the id file {text!r}: {exc.strerror}") from exc
    if not ids:
        raise argparse.ArgumentTypeError(f"the id file {text!r} names no image")
    return ids


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def add_ml_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `simulate`, `evaluate`, `plot` and `simulate-annotator` with their handlers (args.handler)."""
    from ml.al_round import TEACHERS
    from ml.selection import STRATEGIES

    sim = subparsers.add_parser(
        "simulate",
        help="replay the active-learning loop on a labelled dataset (labels as the oracle)",
        description="Writes <out>/round_NNN.json per round and <out>/label_efficiency.png; "
        "rerunning the same command resumes where it stopped.",
    )
    sim.add_argument("--data", type=Path, required=True, help="dataset folder in the project layout")
    sim.add_argument("--out", type=Path, required=True, help="output folder for this run")
    sim.add_argument("--method", default="cps-mars", choices=["supervised", "cps-mars", "s5mars"])
    sim.add_argument(
        "--strategy", default="ueq", help=f"{', '.join(STRATEGIES)} or a UEQ variant (ueq+disagreement, …)"
    )
    sim.add_argument("--initial", default="1%", help="initial random set: a count or a percentage of the pool")
    sim.add_argument("--budget", default="3%", help="final labelled total: a count or a percentage")
    sim.add_argument("--rounds", type=int, default=2, help="query rounds after round 0")
    sim.add_argument("--profile", default="cpu", choices=["cpu", "paper"])
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--pool-split", default="pool", help="split holding the pool ('' = whole folder)")
    sim.add_argument("--val-split", default="val", help="validation split (of --val-data when given)")
    sim.add_argument("--val-data", type=Path, default=None, help="another dataset folder for validation")
    sim.add_argument("--class-ids", type=_int_list, default=None, help="mIoU classes, e.g. 2,3,4,5")
    sim.add_argument("--steps", type=int, default=None, help="training steps of round 0 (profile default)")
    sim.add_argument("--warm-steps", type=int, default=None, help="steps of warm-started rounds")
    warm = sim.add_mutually_exclusive_group()
    warm.add_argument("--warm-start", dest="warm_start", action="store_true", default=None)
    warm.add_argument("--cold-start", dest="warm_start", action="store_false")
    sim.add_argument("--crop", type=int, default=None, help="training crop size (profile default)")
    sim.add_argument("--encoder", default=None, help="lite0 | lite2 | resnet50")
    sim.add_argument("--device", default="auto")
    sim.add_argument("--candidates", type=int, default=None, help="score only this many random pool images")
    sim.add_argument(
        "--score-size", type=int, default=-1, help="scoring resize side (0 = native; default: the profile's)"
    )
    sim.add_argument("--start", default="random", choices=["random", "kmeans", "kcenter"], help="first-set choice")
    sim.add_argument(
        "--initial-ids",
        type=_id_file,
        default=None,
        help="text file of pool ids, one per line: the first set (overrides --start and --initial)",
    )
    sim.add_argument("--final-steps", type=int, default=None, help="training steps of the last round")
    sim.add_argument(
        "--spread", action="store_true", help="spread each query batch over kinds of scene (k-means of the top 10x)"
    )
    sim.add_argument(
        "--self-training", action="store_true", help="the last round self-trains a student on pseudo-labels"
    )
    sim.add_argument("--st-threshold", type=float, default=0.9, help="pseudo-label confidence threshold")
    sim.add_argument(
        "--st-class-keep", type=float, default=None, help="per-class thresholds keeping this share of each class"
    )
    sim.add_argument("--st-steps", type=int, default=None, help="student steps (default: profile)")
    sim.add_argument(
        "--st-encoder-lr",
        type=_positive_float,
        default=None,
        help="the student's encoder learning rate (default: profile)",
    )
    sim.add_argument(
        "--st-encoder", default=None, help="the student's encoder, lite0 | lite2 | resnet50 (default: --encoder)"
    )
    sim.add_argument(
        "--st-teacher-encoder-lr",
        type=_positive_float,
        default=None,
        help="a supervised teacher's encoder learning rate (default: the profile's supervised one)",
    )
    sim.add_argument(
        "--st-generations",
        type=_positive_int,
        default=1,
        help="students in turn, each taught by the one before (noisy student)",
    )
    sim.add_argument(
        "--st-teacher",
        default=None,
        choices=TEACHERS,
        help="who pseudo-labels the pool: the round's model, a supervised model of the human labels (ST++), or "
        "both averaged (ensemble); default: the profile's",
    )
    sim.add_argument(
        "--st-teacher-flip",
        action="store_true",
        help="the teacher pseudo-labels each pool image averaged with its left-right mirror",
    )
    sim.add_argument(
        "--st-dropout",
        action="store_true",
        help="the student trains with dropout in its decoder (model noise; prediction runs without it)",
    )
    sim.add_argument(
        "--st-options", type=_json_dict, default={}, help='JSON for the student\'s options, e.g. {"photometric": true}'
    )
    sim.add_argument("--top-k", type=float, default=None, help="aggregate the top k%% pixels, not the mean")
    sim.add_argument("--exclude-class", type=int, default=None, help="ignore pixels predicted as this class")
    sim.add_argument(
        "--round-cache", type=Path, default=None, help="folder sharing round models between runs that train the same"
    )
    sim.add_argument("--checkpoint-dir", type=Path, default=None, help="round checkpoints (default: --out)")
    sim.add_argument("--train-options", type=_json_dict, default={}, help="JSON for TrainConfig.options")
    sim.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sim.add_argument(
        "--effort", action="store_true", help="record the simulated annotator's actions on each round's picks"
    )
    sim.set_defaults(handler=handle_simulate)

    ev = subparsers.add_parser("evaluate", help="score a saved model on a dataset folder (mIoU, IoU, confusion)")
    ev.add_argument("--model", type=Path, required=True, help="checkpoint file")
    ev.add_argument("--data", type=Path, required=True, help="dataset folder")
    ev.add_argument("--split", default=None, help="split name (default: every labelled image)")
    ev.add_argument("--class-ids", type=_int_list, default=None, help="mIoU classes (default: present in GT)")
    ev.add_argument("--out", type=Path, default=None, help="JSON file to write")
    ev.add_argument("--batch-size", type=int, default=8)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--threads", type=int, default=None)
    ev.add_argument("--flip", action="store_true", help="average with the left-right mirrored image (TTA)")
    ev.set_defaults(handler=handle_evaluate)

    pl = subparsers.add_parser("plot", help="label-efficiency plot from simulate run folders")
    pl.add_argument("runs", type=Path, nargs="+", help="run folders (round_*.json)")
    pl.add_argument("--out", type=Path, required=True, help="PNG file")
    pl.add_argument(
        "--metric", default="miou", help="miou | miou_without_rock | pixel_accuracy | effort (actions per pick)"
    )
    pl.add_argument("--title", default=None)
    pl.set_defaults(handler=handle_plot)

    sa = subparsers.add_parser(
        "simulate-annotator",
        help="count the actions a simulated annotator needs to label images (SAM clicks, commits, fills, brush)",
        description="Labels each image against its label (the oracle) with the web app's actions, using the "
        "project's SAM; writes <out>/annotator_effort.json (per image and summary: NoC@85, NoC@90) and "
        "<out>/annotator_effort.png.",
    )
    sa.add_argument("--data", type=Path, required=True, help="dataset folder in the project layout")
    sa.add_argument("--split", default=None, help="split name (default: every labelled image)")
    sa.add_argument("--start", default="empty", choices=["empty", "model"], help="starting mask")
    sa.add_argument("--model", type=Path, default=None, help="checkpoint whose prediction starts (--start model)")
    sa.add_argument("--target", type=float, default=0.9, help="pixel agreement at which an image is done")
    sa.add_argument("--max-actions", type=int, default=30, help="action cap per image")
    sa.add_argument(
        "--tools",
        default="web",
        choices=["web", "sam", "manual"],
        help="web: SAM + fill + brush; sam: SAM clicks + brush (classic NoC); manual: fill + brush without SAM",
    )
    sa.add_argument("--limit", type=int, default=None, help="only the first N images")
    sa.add_argument("--out", type=Path, default=Path("annotator_effort"), help="output folder")
    sa.add_argument("--device", default="cpu", help="device of the --model prediction")
    sa.add_argument("--threads", type=int, default=1, help="torch and onnxruntime CPU threads")
    sa.set_defaults(handler=handle_simulate_annotator)


def handle_simulate(args: argparse.Namespace) -> int:
    from ml.simulate import SimulationConfig, check_config, plot, run_simulation

    _set_threads(args.threads)
    config = SimulationConfig(
        data=args.data,
        out=args.out,
        method=args.method,
        strategy=args.strategy,
        initial=args.initial,
        budget=args.budget,
        rounds=args.rounds,
        profile=args.profile,
        seed=args.seed,
        pool_split=args.pool_split or None,
        val_split=args.val_split or None,
        val_data=args.val_data,
        class_ids=args.class_ids,
        steps=args.steps,
        warm_steps=args.warm_steps,
        warm_start=args.warm_start,
        crop_size=args.crop,
        encoder=args.encoder,
        device=args.device,
        candidates=args.candidates,
        score_size=None if args.score_size == 0 else args.score_size,
        start=args.start,
        initial_ids=args.initial_ids,
        final_steps=args.final_steps,
        spread=args.spread,
        self_training=args.self_training,
        self_training_threshold=args.st_threshold,
        self_training_class_keep=args.st_class_keep,
        self_training_steps=args.st_steps,
        self_training_encoder_lr=args.st_encoder_lr,
        self_training_encoder=args.st_encoder,
        self_training_teacher_encoder_lr=args.st_teacher_encoder_lr,
        self_training_generations=args.st_generations,
        self_training_teacher=args.st_teacher,
        self_training_teacher_flip=args.st_teacher_flip,
        self_training_dropout=args.st_dropout,
        self_training_options=args.st_options,
        top_k_percent=args.top_k,
        exclude_class=args.exclude_class,
        round_cache=args.round_cache,
        checkpoint_dir=args.checkpoint_dir,
        train_options=args.train_options,
        effort=args.effort,
    )
    try:
        check_config(config)
    except ValueError as error:
        print(f"marslabel simulate: {error}", file=sys.stderr)
        return 2
    records = run_simulation(config)
    png = plot([args.out], args.out / "label_efficiency.png")
    for r in records:
        extra = f"  (no rock {r['miou_without_rock']:.4f})" if r.get("miou_without_rock") is not None else ""
        print(f"round {r['round']}: {r['labeled_count']} labeled  mIoU {r['miou']:.4f}{extra}")
    print(f"plot: {png}")
    return 0


def handle_evaluate(args: argparse.Namespace) -> int:
    from ml.al_round import evaluate
    from ml.checkpoint import CheckpointError, load
    from ml.data import open_dataset, read_classes
    from ml.simulate import tqdm_progress

    _set_threads(args.threads)
    try:
        load(args.model)
        source = open_dataset(args.data, args.split)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"marslabel evaluate: {error}", file=sys.stderr)
        return 2
    progress, close = tqdm_progress("evaluate", position=0)
    result = evaluate(
        args.model,
        source,
        class_ids=args.class_ids,
        class_names={c.id: c.name for c in read_classes(args.data)},
        device=args.device,
        batch_size=args.batch_size,
        flip=args.flip,
        progress=progress,
    )
    close()
    result.update(model=str(args.model), data=str(args.data), split=args.split, flip=args.flip)
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


def handle_simulate_annotator(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ml.annotator import AnnotatorConfig, annotate_images, build_annotator, model_start, plot_effort, summarise
    from ml.checkpoint import CheckpointError
    from ml.data import open_dataset
    from ml.sam.models import ModelFilesError
    from ml.simulate import tqdm_progress, write_json_atomic

    def fail(message: str) -> int:
        print(f"marslabel simulate-annotator: {message}", file=sys.stderr)
        return 2

    if (args.start == "model") != (args.model is not None):
        return fail("--start model needs --model CKPT, and --model is only used with --start model")
    if not 0.0 < args.target <= 1.0 or args.max_actions < 1 or (args.limit is not None and args.limit < 1):
        return fail("--target must be in (0, 1], --max-actions and --limit at least 1")
    _set_threads(args.threads)
    config = AnnotatorConfig(target=args.target, max_actions=args.max_actions)
    try:
        source = open_dataset(args.data, args.split)
        ids = [i for i in source.ids if source.load_label(i) is not None][: args.limit]
        if not ids:
            return fail(f"{args.data} has no labelled images{f' in split {args.split!r}' if args.split else ''}")
        start = model_start(args.model, args.device) if args.model is not None else None
        annotator = build_annotator(args.tools, config, args.threads)
    except (CheckpointError, FileNotFoundError, KeyError, ValueError, ModelFilesError) as error:
        return fail(str(error))
    progress, close = tqdm_progress("simulate-annotator", position=0)
    results = annotate_images(annotator, source, ids, start, progress)
    close()
    summary = summarise(results, args.max_actions)
    label = f"{args.tools}, from {'empty' if start is None else args.model.name}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        args.out / "annotator_effort.json",
        {
            "data": str(args.data),
            "split": args.split,
            "start": args.start,
            "model": str(args.model) if args.model else None,
            "tools": args.tools,
            "config": asdict(config),
            "summary": summary,
            "images": [r.to_json() for r in results],
        },
    )
    png = plot_effort({label: summary}, args.out / "annotator_effort.png")
    brief = {k: v for k, v in summary.items() if k != "mean_agreement_curve"}
    print(json.dumps(brief, indent=1))
    print(f"json: {args.out / 'annotator_effort.json'}\nplot: {png}")
    return 0


def handle_plot(args: argparse.Namespace) -> int:
    from ml.simulate import plot

    print(plot(args.runs, args.out, metric=args.metric, title=args.title))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.cli", description="marslabel ML commands")
    sub = parser.add_subparsers(dest="command", required=True)
    add_ml_commands(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
