"""Training throughput of each method on synthetic 256² scenes (CPU by default); prints figures only.

    .venv/bin/python bench/train_speed.py --threads 2 --steps 5 --methods supervised cps-mars

Images per second count every image that goes through a training step (labelled + unlabelled), over
the steps after the first (warm-up), with batch assembly and augmentation included.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

import torch

from ml.allocator import set_enabled
from ml.data import InMemorySource
from ml.interfaces import TrainConfig
from ml.ssl import train
from ml.synthetic import generate_scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (one more runs first, as warm-up)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8, help="labelled batch; the unlabelled batch is the same")
    parser.add_argument("--encoder", default="lite0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", nargs="+", default=["supervised", "cps-mars", "s5mars"])
    parser.add_argument(
        "--glibc-defaults", action="store_true", help="train with glibc's allocator thresholds (ml.allocator off)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_enabled(not args.glibc_defaults)

    scenes = {f"s{i}": generate_scene(i, args.size) for i in range(2 * args.batch)}
    labelled = InMemorySource({k: v[0] for k, v in scenes.items()}, {k: v[1] for k, v in scenes.items()})
    pool = InMemorySource({k: v[0] for k, v in scenes.items()})
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, encoder {args.encoder}, "
        f"{args.size}x{args.size}, batch {args.batch} (+{args.batch} unlabelled for SSL methods)"
    )
    for method in args.methods:
        config = TrainConfig(
            method=method, encoder=args.encoder, crop_size=args.size, batch_labeled=args.batch,
            batch_unlabeled=args.batch, steps=args.steps + 1, device=args.device, seed=0,
            options={"checkpoint_every": 10**9},
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            result = train(config, labelled, pool, None, checkpoint_path=Path(tmp) / "bench.pt")
        timed = [r["seconds"] for r in result.history if "seconds" in r][1:]
        images = args.batch * (1 if method == "supervised" else 2)
        per_step = sum(timed) / len(timed)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{method:11s} {per_step:6.2f} s/step  {images / per_step:6.2f} images/s  "
            f"(incl. warm-up step: {result.images_per_second:.2f} images/s)  "
            f"resident after: {_resident_mib():.0f} MiB, peak {peak:.0f} MiB"
        )


def _resident_mib() -> float:
    """The process's resident memory now (Linux; 0 elsewhere): what a worker keeps after a training."""
    status = Path("/proc/self/status")
    if not status.exists():
        return 0.0
    line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


if __name__ == "__main__":
    main()
