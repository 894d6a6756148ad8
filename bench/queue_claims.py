"""Annotation queue under load, against a real API server on PostgreSQL, with 20 annotators (threads, each with
its own token), in two loads:

- closed loop: each annotator loops next → save mask → next as fast as the server answers, for 60 s: the most
  claims per second the service gives, and the latency of `next` at that saturation;
- open loop: each annotator claims every 5–10 s (uniformly drawn), next → save, on a schedule that does not wait
  for the server (a late answer does not move the next claim's planned time, and a claim's latency counts from
  its planned time), for 120 s: the latency of `next` at a realistic rate of about 2.7 claims per second.

Reports claims per second, p50/p95 latency of `next` and of the save, and checks that no image was handed to two
annotators.

Run: .venv/bin/python bench/queue_claims.py [--annotators 20] [--seconds 60] [--open-seconds 120]
[--interval 5 10] [--images 20000] [--loads closed,open]. Writes bench/results/queue.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `bench.common` when run as a script

import argparse
import io
import random
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
from server.models import Image, ImageBlob, ImageStatus, MaskVersion, ProjectRole, Role, Split
from server.store.members import add_member
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
                if not self.claim_and_save(time.perf_counter()):
                    return
        finally:
            self.client.close()

    def claim_and_save(self, since: float) -> bool:
        """One `next` (its latency counted from `since`) and, when it gave an image, one save; False when the
        queue is empty."""
        response = self.client.post(f"/api/v1/projects/{self.project_id}/queue/next")
        self.next_latency.append(time.perf_counter() - since)
        if response.status_code != 200:
            self.errors.append(f"next {response.status_code}: {response.text[:200]}")
            return True
        image = response.json()["image"]
        if image is None:
            return False
        self.claimed.append(image["id"])
        t0 = time.perf_counter()
        saved = self.client.post(
            f"/api/v1/projects/{self.project_id}/images/{image['id']}/masks",
            files={"mask": ("mask.png", self.mask, "image/png")},
        )
        self.save_latency.append(time.perf_counter() - t0)
        if saved.status_code != 201:
            self.errors.append(f"save {saved.status_code}: {saved.text[:200]}")
        return True


class PacedAnnotator(Annotator):
    """Open loop: claims at planned times drawn every `interval` seconds, whatever the server's answer time."""

    def __init__(
        self, base: str, token: str, project_id: int, stop_at: float, mask: bytes, interval: tuple[float, float],
        seed: int,
    ):  # fmt: skip
        super().__init__(base, token, project_id, stop_at, mask)
        self.interval = interval
        self.rng = random.Random(seed)
        self.late = 0  # claims sent after their planned time (the previous one answered too late)

    def run(self) -> None:
        try:
            planned = time.perf_counter() + self.rng.uniform(0, self.interval[1])  # annotators start staggered
            while planned < self.stop_at:
                now = time.perf_counter()
                if now < planned:
                    time.sleep(planned - now)
                else:
                    self.late += 1
                since, planned = planned, planned + self.rng.uniform(*self.interval)
                if not self.claim_and_save(since):
                    return
        finally:
            self.client.close()


def run_load(annotators: list[Annotator]) -> dict[str, object]:
    started = time.perf_counter()
    for annotator in annotators:
        annotator.start()
    for annotator in annotators:
        annotator.join()
    elapsed = time.perf_counter() - started
    next_latency = [t for a in annotators for t in a.next_latency]
    save_latency = [t for a in annotators for t in a.save_latency]
    claims = sum(len(a.claimed) for a in annotators)
    errors = [e for a in annotators for e in a.errors]
    return {
        "seconds": round(elapsed, 1),
        "claims": claims,
        "claims_per_second": round(claims / elapsed, 2),
        "next_latency_p50_ms": round(1000 * percentile(next_latency, 50), 1),
        "next_latency_p95_ms": round(1000 * percentile(next_latency, 95), 1),
        "save_latency_p50_ms": round(1000 * percentile(save_latency, 50), 1),
        "save_latency_p95_ms": round(1000 * percentile(save_latency, 95), 1),
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--open-seconds", type=float, default=120)
    parser.add_argument("--interval", type=float, nargs=2, default=(5.0, 10.0), metavar=("MIN", "MAX"))
    parser.add_argument("--loads", default="closed,open", help="which loads to run, in this order")
    args = parser.parse_args()
    loads = [load.strip() for load in args.loads.split(",") if load.strip()]
    if not loads or set(loads) - {"closed", "open"}:
        parser.error("--loads takes closed, open or both")

    url = bench_database()
    with session_scope(url) as session:
        project = create_project(session, "queue-bench", [{"id": 0, "name": "soil", "color": [1, 2, 3]}])
        project_id = project.id
        tokens = []
        for i in range(args.annotators):  # annotators of this project: queue/next is a project route
            user, token = create_user(session, f"annotator-{i:02d}", Role.annotator)
            add_member(session, project, user, ProjectRole.annotator)
            tokens.append(token)
    seed_images(url, project_id, args.images)
    # Planner statistics as autovacuum would have them on a live database; right after a bulk insert the
    # planner believes the table is empty and sorts every candidate row on each claim.
    with get_engine(url).connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    print(f"seeded {args.images} images; {args.annotators} annotators; loads: {', '.join(loads)}")
    mask = _png(np.zeros((SIZE, SIZE), np.uint8))

    results: dict[str, dict[str, object]] = {}
    everyone: list[Annotator] = []  # the same 20 users in each load
    with tempfile.TemporaryDirectory() as data_dir, api_server(url, Path(data_dir)) as base:
        for load in loads:
            annotators: list[Annotator]
            if load == "closed":
                stop_at = time.perf_counter() + args.seconds
                annotators = [Annotator(base, token, project_id, stop_at, mask) for token in tokens]
                results[load] = run_load(annotators)
            else:
                stop_at = time.perf_counter() + args.open_seconds
                interval = (args.interval[0], args.interval[1])
                paced = [
                    PacedAnnotator(base, token, project_id, stop_at, mask, interval, seed=number)
                    for number, token in enumerate(tokens)
                ]
                annotators = list(paced)
                results[load] = run_load(annotators)
                results[load]["claim_interval_s"] = list(interval)
                results[load]["claims_sent_late"] = sum(a.late for a in paced)
            print(f"{load} loop: {results[load]}")
            everyone.extend(annotators)

    # No image to two annotators: from what the clients were handed, and from the masks in the database.
    holders: dict[int, set[int]] = defaultdict(set)
    for number, annotator in enumerate(everyone):
        for image_id in annotator.claimed:
            holders[image_id].add(number % args.annotators)
    handed_twice = sorted(i for i, who in holders.items() if len(who) > 1)
    with session_scope(url) as session:
        versions_per_image = session.execute(
            select(MaskVersion.image_id, func.count(), func.count(func.distinct(MaskVersion.author_id))).group_by(
                MaskVersion.image_id
            )
        ).all()
    saved_twice = [image_id for image_id, versions, _authors in versions_per_image if versions > 1]

    figures = {
        "annotators": args.annotators,
        "images_seeded": args.images,
        "database": "PostgreSQL",
        "command": " ".join([".venv/bin/python", "bench/queue_claims.py", *sys.argv[1:]]),
        **{f"{load}_loop": results[load] for load in loads},
        "images_handed_to_two_annotators": len(handed_twice),
        "images_with_two_mask_versions": len(saved_twice),
        "masks_saved": len(versions_per_image),
    }
    for key, value in figures.items():
        print(f"{key:>32}: {value}")
    print(f"written to {write_result('queue', figures)}")
    if handed_twice or saved_twice:
        print(f"FAILED: images handed to two annotators: {handed_twice[:20]}, saved twice: {saved_twice[:20]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
