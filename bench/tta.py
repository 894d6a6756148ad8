"""Test-time flip: each checkpoint scored on dev val with and without the mirrored image, side by side.

    .venv/bin/python bench/tta.py run CHECKPOINT... [--threads 1]   # one JSON per checkpoint, resumable
    .venv/bin/python bench/tta.py summary                          # bench/results/tta/summary.md

A checkpoint is named by its sha256 (ml.sam.models.sha256_of), so a model scored once is never scored again,
wherever its file lies. Both passes use the same predictor code (ml.predict, `flip` on or off), the same val
images and the label-efficiency benchmark's classes, so the difference is the flip alone; the seconds are the
ratio's basis (the flip runs each network twice).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.label_efficiency import CLASS_IDS, DATA  # noqa: E402

RESULTS = REPO / "bench" / "results" / "tta"


def score(checkpoint: Path, label: str, data: Path = DATA, results: Path = RESULTS) -> dict:
    from ml.al_round import evaluate
    from ml.data import open_dataset, read_classes
    from ml.sam.models import sha256_of
    from ml.simulate import write_json_atomic

    digest = sha256_of(checkpoint)
    out = results / f"{digest[:16]}.json"
    if out.exists():
        return json.loads(out.read_text())
    val = open_dataset(data, "val")
    names = {c.id: c.name for c in read_classes(data)}
    record: dict = {"checkpoint": str(checkpoint), "label": label, "sha256": digest}
    for flip in (False, True):
        started = time.perf_counter()
        result = evaluate(checkpoint, val, class_ids=CLASS_IDS, class_names=names, device="cpu", flip=flip)
        record["flip" if flip else "plain"] = {
            "miou": result["miou"],
            "per_class_iou": result["per_class_iou"],
            "seconds": time.perf_counter() - started,
        }
    results.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, record)
    return record


def summary(results: Path = RESULTS) -> str:
    records = sorted(
        (json.loads(p.read_text()) for p in results.glob("*.json")), key=lambda r: (r["label"], r["sha256"])
    )
    lines = [
        "# Test-time flip on dev val (300 images, mIoU over soil, sand, bedrock, rock)",
        "",
        "Each checkpoint scored twice by the same code, without and with the mirrored image (`bench/tta.py`).",
        "",
        "| checkpoint | plain | flip | flip − plain | rock plain → flip | seconds plain / flip |",
        "|---|---|---|---|---|---|",
    ]
    diffs = []
    for r in records:
        a, b = r["plain"], r["flip"]
        diffs.append(100 * (b["miou"] - a["miou"]))
        lines.append(
            f"| {r['label']} | {a['miou']:.3f} | {b['miou']:.3f} | {diffs[-1]:+.1f} | "
            f"{a['per_class_iou'].get('5', 0):.3f} → {b['per_class_iou'].get('5', 0):.3f} | "
            f"{a['seconds']:.0f} / {b['seconds']:.0f} |"
        )
    if diffs:
        spread = f" ± {statistics.stdev(diffs):.1f}" if len(diffs) > 1 else ""
        better = sum(d > 0 for d in diffs)
        lines += ["", f"flip − plain: {statistics.mean(diffs):+.1f}{spread} points over {len(diffs)} checkpoints"
                  f" ({better} better, {len(diffs) - better} not)."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    results.mkdir(parents=True, exist_ok=True)
    (results / "summary.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("checkpoints", type=Path, nargs="+")
    run.add_argument("--label", action="append", default=None, help="a name per checkpoint (default: its path)")
    run.add_argument("--threads", type=int, default=None)
    sub.add_parser("summary")
    args = parser.parse_args(argv)
    if args.command == "run":
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        labels = args.label or [str(p) for p in args.checkpoints]
        if len(labels) != len(args.checkpoints):
            parser.error("give one --label per checkpoint, or none")
        for checkpoint, label in zip(args.checkpoints, labels, strict=True):
            r = score(checkpoint, label)
            print(f"{label}: plain {r['plain']['miou']:.4f}, flip {r['flip']['miou']:.4f}", flush=True)
    print(summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
