"""Upload throughput: 1,000 generated 256×256 PNGs through a real API server into PostgreSQL.

Run: .venv/bin/python bench/upload.py [--images 1000] [--batch 50]. Prints images per second and writes
bench/results/upload.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `bench.common` when run as a script

import argparse
import io
import tempfile
import time

import httpx
import numpy as np
from PIL import Image

from bench.common import api_server, bench_database, percentile, write_result
from server.db import session_scope
from server.models import Role
from server.store.projects import create_project
from server.store.users import create_user


def smooth_png(seed: int, size: int = 256) -> bytes:
    """A photo-like image (smooth colour field plus grain), so PNG sizes resemble real scenes, not noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
    grain = rng.normal(0, 6, (size, size, 3))
    pixels = np.clip(np.asarray(coarse, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    url = bench_database()
    with session_scope(url) as session:
        _user, token = create_user(session, "bench-lead", Role.lead)
        project = create_project(session, "upload-bench", [{"id": 0, "name": "soil", "color": [1, 2, 3]}])
        project_id = project.id
    files = [smooth_png(seed) for seed in range(args.images)]
    megabytes = sum(map(len, files)) / 1e6
    print(f"generated {len(files)} PNGs, {megabytes:.1f} MB")

    latencies: list[float] = []
    stored = 0
    auth = {"Authorization": f"Bearer {token}"}
    with (
        tempfile.TemporaryDirectory() as data_dir,
        api_server(url, Path(data_dir)) as base,
        httpx.Client(base_url=base, headers=auth, timeout=300) as client,
    ):
        started = time.perf_counter()
        for start in range(0, len(files), args.batch):
            batch = files[start : start + args.batch]
            parts = [("files", (f"img_{start + i:05d}.png", data, "image/png")) for i, data in enumerate(batch)]
            t0 = time.perf_counter()
            response = client.post(f"/api/v1/projects/{project_id}/images", files=parts)
            latencies.append(time.perf_counter() - t0)
            response.raise_for_status()
            stored += response.json()["stored"]
        elapsed = time.perf_counter() - started
    assert stored == len(files), f"only {stored} of {len(files)} stored"
    figures = {
        "images": len(files),
        "batch": args.batch,
        "megabytes": round(megabytes, 2),
        "seconds": round(elapsed, 2),
        "images_per_second": round(len(files) / elapsed, 1),
        "megabytes_per_second": round(megabytes / elapsed, 2),
        "batch_latency_p50_s": round(percentile(latencies, 50), 3),
        "batch_latency_p95_s": round(percentile(latencies, 95), 3),
    }
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(f"written to {write_result('upload', figures)}")


if __name__ == "__main__":
    main()
