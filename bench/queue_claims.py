"""Annotation queue under load: 20 annotators (threads, each with its own token) loop next → save mask → next
for 60 s against a real API server on PostgreSQL. Reports claims per second, p50/p95 latency of `next`, and
checks that no image was handed to two annotators.

Run: .venv/bin/python bench/queue_claims.py [--annotators 20] [--seconds 60] [--images 20000]. Writes
bench/results/queue.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `bench.common` when run as a script

import argparse
import io
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

import httpx
import numpy as np
from PIL import Image as PILImage
from sqlalchemy import func, insert, select, text

from bench.common import api_server, bench_database, percentile, write_result
from server.db import get_engine, session_scope
from server.models import Image, ImageBlob, ImageStatus, MaskVersion, Role, Split
from server.store.projects import create_project
from server.store.users import create_user

SIZE = 16


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def seed_images(url: str, project_id: int, count: int) -> None:
    """Rows and bytes inserted in bulk: the queue is measured here, not the upload path (bench/upload.py)."""
    now = datetime.now(UTC)
    with session_scope(url) as session:
        for start in range(0, count, 2000):
            rows, blobs = [], []
            for index in range(start, min(count, start + 2000)):
                pixels = np.zeros((SIZE, SIZE, 3), np.uint8)
                pixels.reshape(-1)[:4] = np.frombuffer(index.to_bytes(4, "little"), np.uint8)
                data = _png(pixels)
                rows.append(
                    {
                        "id": index + 1,
                        "project_id": project_id,
                        "file_name": f"q_{index:06d}.png",
                        "sha256": f"{index:064x}",
                        "width": SIZE,
                        "height": SIZE,
                        "format": "PNG",
                        "byte_size": len(data),
                        "split": Split.pool,
                        "status": ImageStatus.unlabeled,
                        "import_order": index + 1,
                        "created_at": now,
                    }
                )
                blobs.append({"image_id": index + 1, "data": data})
            session.execute(insert(Image), rows)
            session.execute(insert(ImageBlob), blobs)


class Annotator(threading.Thread):
    def __init__(self, base: str, token: str, project_id: int, stop_at: float, mask: bytes):
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        self.project_id, self.stop_at, self.mask = project_id, stop_at, mask
        self.claimed: list[int] = []
        self.next_latency: list[float] = []
        self.save_latency: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            while time.perf_counter() < self.stop_at:
                t0 = time.perf_counter()
                response = self.client.post(f"/api/v1/projects/{self.project_id}/queue/next")
                self.next_latency.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    self.errors.append(f"next {response.status_code}: {response.text[:200]}")
                    continue
                image = response.json()["image"]
                if image is None:
                    return
                self.claimed.append(image["id"])
                t0 = time.perf_counter()
                saved = self.client.post(
                    f"/api/v1/projects/{self.project_id}/images/{image['id']}/masks",
                    files={"mask": ("mask.png", self.mask, "image/png")},
                )
                self.save_latency.append(time.perf_counter() - t0)
                if saved.status_code != 201:
                    self.errors.append(f"save {saved.status_code}: {saved.text[:200]}")
        finally:
            self.client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--images", type=int, default=20000)
    args = parser.parse_args()

    url = bench_database()
    with session_scope(url) as session:
        project = create_project(session, "queue-bench", [{"id": 0, "name": "soil", "color": [1, 2, 3]}])
        project_id = project.id
        tokens = [create_user(session, f"annotator-{i:02d}", Role.annotator)[1] for i in range(args.annotators)]
    seed_images(url, project_id, args.images)
    # Planner statistics as autovacuum would have them on a live database; right after a bulk insert the
    # planner believes the table is empty and sorts every candidate row on each claim.
    with get_engine(url).connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    print(f"seeded {args.images} images; {args.annotators} annotators for {args.seconds:.0f} s")
    mask = _png(np.zeros((SIZE, SIZE), np.uint8))

    with tempfile.TemporaryDirectory() as data_dir, api_server(url, Path(data_dir)) as base:
        stop_at = time.perf_counter() + args.seconds
        annotators = [Annotator(base, token, project_id, stop_at, mask) for token in tokens]
        started = time.perf_counter()
        for annotator in annotators:
            annotator.start()
        for annotator in annotators:
            annotator.join()
        elapsed = time.perf_counter() - started

    # No image to two annotators: from what the clients were handed, and from the masks in the database.
    holders: dict[int, set[int]] = defaultdict(set)
    for number, annotator in enumerate(annotators):
        for image_id in annotator.claimed:
            holders[image_id].add(number)
    handed_twice = sorted(i for i, who in holders.items() if len(who) > 1)
    with session_scope(url) as session:
        versions_per_image = session.execute(
            select(MaskVersion.image_id, func.count(), func.count(func.distinct(MaskVersion.author_id))).group_by(
                MaskVersion.image_id
            )
        ).all()
    saved_twice = [image_id for image_id, versions, _authors in versions_per_image if versions > 1]

    next_latency = [t for a in annotators for t in a.next_latency]
    save_latency = [t for a in annotators for t in a.save_latency]
    claims = sum(len(a.claimed) for a in annotators)
    errors = [e for a in annotators for e in a.errors]
    figures = {
        "annotators": args.annotators,
        "seconds": round(elapsed, 1),
        "images_seeded": args.images,
        "claims": claims,
        "claims_per_second": round(claims / elapsed, 1),
        "next_latency_p50_ms": round(1000 * percentile(next_latency, 50), 1),
        "next_latency_p95_ms": round(1000 * percentile(next_latency, 95), 1),
        "save_latency_p50_ms": round(1000 * percentile(save_latency, 50), 1),
        "save_latency_p95_ms": round(1000 * percentile(save_latency, 95), 1),
        "images_handed_to_two_annotators": len(handed_twice),
        "images_with_two_mask_versions": len(saved_twice),
        "masks_saved": len(versions_per_image),
        "errors": len(errors),
        "first_errors": errors[:5],
    }
    for key, value in figures.items():
        print(f"{key:>32}: {value}")
    print(f"written to {write_result('queue', figures)}")
    if handed_twice or saved_twice:
        print(f"FAILED: images handed to two annotators: {handed_twice[:20]}, saved twice: {saved_twice[:20]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
