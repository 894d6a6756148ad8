"""Prediction throughput in channels-last against NCHW, side by side in one process; prints figures only.

    .venv/bin/python bench/predict_speed.py --threads 2 --images 64 --pairs 3 --sizes 256 128

The same ModelPredictor code (ml.predict) with `channels_last` on and off, on the same images, alternating which
goes first in each pair: the dev set's val images where ../shared is present (at their native 256² and resized to
each other size, as the rounds score the pool at 128²), synthetic scenes elsewhere. The network is the pipeline's
Lite0 DeepLabV3+ with its ImageNet encoder, or a trained checkpoint (`--checkpoint`). Besides images per second it
prints how far the two layouts' probabilities lie apart and the share of pixels whose argmax agrees: the layouts
sum in another order, so they differ in the last bits, not in what they predict.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.label_efficiency import DATA  # noqa: E402
from ml.network import build_model  # noqa: E402
from ml.predict import ModelPredictor, load_predictor  # noqa: E402
from ml.scoring import resize_square  # noqa: E402


def _images(count: int, data: Path) -> tuple[np.ndarray, str]:
    if (data / "splits" / "val.txt").exists():
        from ml.data import open_dataset

        val = open_dataset(data, "val")
        return np.stack([val.load_image(i) for i in list(val.ids)[:count]]), f"dev val ({data.name})"
    from ml.synthetic import generate_scene

    return np.stack([generate_scene(i, 256)[0] for i in range(count)]), "synthetic scenes (no dev set here)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint (default: Lite0 with ImageNet encoder)")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    if args.checkpoint is not None:
        loaded = load_predictor(args.checkpoint, device="cpu")
        nets, num_classes = loaded.models, loaded.num_classes
    else:
        nets, num_classes = [build_model("lite0", 5).eval()], 5
    # The NCHW arm needs NCHW weights: a predictor in channels-last leaves the networks it is given as they are.
    nchw = [net.to(memory_format=torch.contiguous_format) for net in nets]
    images, source = _images(args.images, args.data)
    print(f"{len(images)} images from {source}, torch threads {torch.get_num_threads()}, batch {args.batch}")
    for size in args.sizes:
        batch = images if images.shape[1:3] == (size, size) else np.stack([resize_square(i, size) for i in images])
        rates: dict[bool, list[float]] = {False: [], True: []}
        probs: dict[bool, np.ndarray] = {}
        predictors = {
            layout: ModelPredictor(nchw, num_classes, device, args.batch, channels_last=layout)
            for layout in (False, True)
        }
        for layout in (False, True):
            predictors[layout].predict_proba(batch[: args.batch])  # warm-up: oneDNN builds its kernels once
        for pair in range(args.pairs):
            for layout in (False, True) if pair % 2 == 0 else (True, False):
                started = time.perf_counter()
                probs[layout] = predictors[layout].predict_proba(batch)
                rates[layout].append(len(batch) / (time.perf_counter() - started))
        nchw_rate, last_rate = statistics.mean(rates[False]), statistics.mean(rates[True])
        agree = float((probs[False].argmax(1) == probs[True].argmax(1)).mean())
        print(
            f"{size}²: NCHW {nchw_rate:.1f} images/s {[round(r, 1) for r in rates[False]]}, channels-last "
            f"{last_rate:.1f} {[round(r, 1) for r in rates[True]]}; time ratio channels-last/NCHW "
            f"{nchw_rate / last_rate:.2f}x; max |Δp| {np.abs(probs[False] - probs[True]).max():.1e}, "
            f"argmax agrees on {agree:.6%} of pixels"
        )


if __name__ == "__main__":
    main()
