"""SAM speed on this machine: the ONNX encoder (ms per image, 1 and 2 threads) on three dev images and one
synthetic 1200×1200 scene, the server decoder per click (p50/p95 with 1, 3 and 6 points), and embedding bytes.

    .venv/bin/python bench/sam_speed.py [--repeats 3] [--clicks 40]

Prints the figures and writes bench/results/sam_speed.json. Needs no database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import percentile, write_result  # noqa: E402
from ml.sam.decoder import OnnxDecoder  # noqa: E402
from ml.sam.encoder import OnnxEncoder  # noqa: E402
from ml.sam.interface import Prompt  # noqa: E402
from ml.sam.models import REPO_MODEL_DIR, model_paths  # noqa: E402
from ml.sam.scenes import disc_scene  # noqa: E402

DEV_IMAGES = REPO.parent / "shared" / "data" / "ai4mars-msl256-dev" / "images"


def _images() -> dict[str, np.ndarray]:
    images = {p.name: np.asarray(Image.open(p).convert("RGB")) for p in sorted(DEV_IMAGES.glob("*"))[:3]}
    images["synthetic-1200x1200"] = disc_scene(1200, 1200, (600, 500), 150)[0]
    return images


def _encoder_ms(path: Path, threads: int, images: dict[str, np.ndarray], repeats: int) -> dict[str, float]:
    encoder = OnnxEncoder(path, threads)
    encoder.encode(next(iter(images.values())))  # warm-up: session start and first-run allocations
    result = {}
    for name, image in images.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            encoder.encode(image)
            times.append((time.perf_counter() - started) * 1e3)
        result[name] = statistics.median(times)
    return result


def _decoder_ms(path: Path, threads: int, embedding, clicks: int) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    decoder = OnnxDecoder(path, threads)
    rng = np.random.default_rng(0)
    height, width = embedding.original_size
    result = {}
    for count in (1, 3, 6):
        times = []
        for index in range(clicks + 3):
            points = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(count)]
            labels = [1] + [int(rng.integers(0, 2)) for _ in range(count - 1)]
            started = time.perf_counter()
            decoder.decode(embedding, Prompt(points, labels))
            if index >= 3:  # the first runs warm the session
                times.append((time.perf_counter() - started) * 1e3)
        result[f"{count}_points"] = {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clicks", type=int, default=40)
    args = parser.parse_args()
    paths = model_paths(REPO_MODEL_DIR)
    images = _images()
    figures: dict = {
        "machine": f"{os.cpu_count()} CPU cores (shared)",
        "encoder_ms_median": {},
        "decoder_ms": {},
        "sizes": {name: list(image.shape[:2]) for name, image in images.items()},
    }
    for threads in (1, 2):
        figures["encoder_ms_median"][f"{threads}_threads"] = _encoder_ms(paths.encoder, threads, images, args.repeats)
        print(f"encoder, {threads} thread(s), ms median:", figures["encoder_ms_median"][f"{threads}_threads"])
    embedding = OnnxEncoder(paths.encoder, 2).encode(images["synthetic-1200x1200"])
    for threads in (1, 2):
        figures["decoder_ms"][f"{threads}_threads"] = _decoder_ms(paths.decoder, threads, embedding, args.clicks)
        print(f"decoder on 1200×1200, {threads} thread(s):", figures["decoder_ms"][f"{threads}_threads"])
    figures["embedding_bytes"] = {"float16": int(embedding.data.nbytes), "float32": int(embedding.data.nbytes * 2)}
    print("embedding bytes:", figures["embedding_bytes"])
    print("written to", write_result("sam_speed", figures))


if __name__ == "__main__":
    main()
