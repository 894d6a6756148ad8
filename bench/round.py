"""One query round and one pseudo-label job on the AI4Mars dev set, through the API and a real worker process.

A project holding ../shared/data/ai4mars-msl256-dev: 2,100 pool images with 63 human labels (seeded random
choice) and the 300 val images with their labels (the round validates on them). One `cps-mars` + `ueq` round
with the `cpu` profile (budget 21 = 1%), then pseudo-labels for every image without a human label with the
round's model. Prints the round's time split into train / score / rank / store, the pseudo-label images per
second, and writes bench/results/round.json after each phase.

    .venv/bin/python bench/round.py              # PostgreSQL (MARSLABEL_BENCH_DATABASE_URL + "_round"), Redis db 15

Resumable: the project and its jobs live in the database; a rerun finds a finished phase and skips it, and a
job left behind by a killed run is taken over by the new worker (its reaper re-queues it; training resumes
from the job's checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import DEFAULT_BENCH_DATABASE_URL, RESULTS, bench_database, write_result  # noqa: E402
from server.db import get_engine, session_scope  # noqa: E402
from server.models import Image, Job, JobStatus, Project, Role, Round, Split  # noqa: E402
from server.settings import Settings  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "ai4mars-msl256-dev"
PROJECT = "ai4mars-round-bench"
REDIS = "redis://127.0.0.1:6379/15"
WORK = REPO / "bench" / "runs" / "round"
RESULT = "round"
TERMINAL = {JobStatus.done, JobStatus.failed, JobStatus.cancelled}


def database() -> str:
    default = make_url(os.environ.get("MARSLABEL_BENCH_DATABASE_URL", DEFAULT_BENCH_DATABASE_URL))
    return default.set(database=f"{default.database}_round").render_as_string(hide_password=False)


def seed(url: str, labeled: int, seed_value: int) -> int:
    from server.store.images import add_image
    from server.store.limits import UploadLimits
    from server.store.projects import create_project

    limits = UploadLimits(max_upload_bytes=50_000_000, max_image_pixels=50_000_000)
    pool = (DATA / "splits" / "pool.txt").read_text().split()
    val = (DATA / "splits" / "val.txt").read_text().split()
    chosen = set(np.random.default_rng(seed_value).choice(len(pool), size=labeled, replace=False).tolist())
    classes = json.loads((DATA / "classes.json").read_text())["classes"]
    with session_scope(url) as session:
        project_id = create_project(session, PROJECT, classes).id
    items = [(name, Split.pool, i in chosen) for i, name in enumerate(pool)]
    items += [(name, Split.val, True) for name in val]
    for start in tqdm(range(0, len(items), 200), desc="seeding", unit="×200"):
        with session_scope(url) as session:
            project = session.get_one(Project, project_id)
            for name, split, with_label in items[start : start + 200]:
                label = (DATA / "labels" / f"{name}.png").read_bytes() if with_label else None
                data = (DATA / "images" / f"{name}.jpg").read_bytes()
                result = add_image(session, project, f"{name}.jpg", data, split=split, label_png=label, limits=limits)
                assert result.status == "stored", result
    return project_id


def follow(url: str, job_id: int, desc: str) -> Job:
    bar = tqdm(total=1000, desc=desc, unit="‰")
    while True:
        with session_scope(url) as session:
            job = session.get_one(Job, job_id)
            session.expunge(job)
        bar.n = round(job.progress * 1000)
        bar.set_postfix_str(job.message[-70:])
        bar.refresh()
        if job.status in TERMINAL:
            bar.close()
            if job.status != JobStatus.done:
                raise SystemExit(f"{desc} job {job_id} ended {job.status.value}: {job.error}")
            return job
        time.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labeled", type=int, default=63)
    parser.add_argument("--method", default="cps-mars")
    parser.add_argument("--strategy", default="ueq")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the cpu profile's)")
    parser.add_argument("--fresh", action="store_true", help="empty the database and start again")
    args = parser.parse_args()
    if not (DATA / "splits" / "pool.txt").exists():
        raise SystemExit(f"the dev set is not at {DATA}")

    import redis
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.store.users import create_user
    from tests.integration.conftest import start_worker

    url = database()
    os.environ["MARSLABEL_BENCH_DATABASE_URL"] = url
    existing = None if args.fresh else _existing(url)
    if existing is None:
        url = bench_database()  # create, migrate, empty
        shutil.rmtree(WORK, ignore_errors=True)
        redis.Redis.from_url(REDIS).flushdb()
    WORK.mkdir(parents=True, exist_ok=True)
    settings = Settings(database_url=url, broker_url=REDIS, data_dir=WORK / "data", job_heartbeat_seconds=10)
    figures: dict[str, Any] = {"data": str(DATA), "labeled": args.labeled, "method": args.method}
    previous = RESULTS / f"{RESULT}.json"
    if existing is not None and previous.exists():
        figures.update({k: v for k, v in json.loads(previous.read_text()).items() if k in ("round", "pseudo_labels")})

    if existing is None:
        started = time.perf_counter()
        project_id = seed(url, args.labeled, 0)
        with get_engine(url).connect() as connection:
            connection.exec_driver_sql("ANALYZE")
        figures["seed_seconds"] = time.perf_counter() - started
    else:
        project_id = existing
    with session_scope(url) as session:
        _user, token = create_user(session, f"bench-lead-{time.time_ns()}", Role.lead)
        counts = dict(
            session.execute(
                select(Image.split, func.count()).where(Image.project_id == project_id).group_by(Image.split)
            ).all()
        )
        round_row = session.scalar(select(Round).where(Round.project_id == project_id).order_by(Round.index))
        round_job = round_row.job_id if round_row is not None else None
    figures["images"] = {split.value: n for split, n in counts.items()}
    headers = {"Authorization": f"Bearer {token}"}

    worker = start_worker(settings, WORK / "worker.log", timeout=180)
    try:
        with TestClient(create_app(settings)) as client:
            if round_job is None:
                body = {"method": args.method, "strategy": args.strategy, "budget": "1%", "profile": "cpu"}
                if args.steps:
                    body["steps"] = args.steps
                answer = client.post(f"/api/v1/projects/{project_id}/rounds", json=body, headers=headers)
                answer.raise_for_status()
                round_job = answer.json()["job_id"]
            started = time.perf_counter()
            job = follow(url, round_job, "round")
            result = job.result or {}
            figures["round"] = {
                "job_id": round_job,
                "wall_seconds_this_run": time.perf_counter() - started,
                "job_seconds": (job.finished_at - job.started_at).total_seconds(),
                "seconds": result.get("seconds"),
                "miou": result.get("miou"),
                "labeled": result.get("labeled"),
                "scored": result.get("scored"),
                "attempts": job.attempts,
            }
            write_result(RESULT, figures)

            if "pseudo_labels" not in figures:
                answer = client.post(f"/api/v1/projects/{project_id}/pseudo-labels", json={}, headers=headers)
                answer.raise_for_status()
                job = follow(url, answer.json()["id"], "pseudo-labels")
                seconds = (job.finished_at - job.started_at).total_seconds()
                stored = (job.result or {}).get("stored", 0)
                figures["pseudo_labels"] = {
                    "job_id": job.id,
                    "stored": stored,
                    "seconds": seconds,
                    "images_per_second": stored / seconds if seconds > 0 else None,
                    "mean_confidence": (job.result or {}).get("mean_confidence"),
                }
                write_result(RESULT, figures)
    finally:
        worker.stop()

    load = os.getloadavg()
    figures["load_average_at_end"] = load
    figures["caveat"] = "2 shared CPU cores; other work (tests, benchmarks) may have run beside it: see the load"
    write_result(RESULT, figures)
    r, p = figures["round"], figures["pseudo_labels"]
    s = r["seconds"] or {}
    print(
        f"round ({args.method}/{args.strategy}, cpu profile, {r['labeled']} labels trained on): job "
        f"{r['job_seconds']:.0f} s = train {s.get('train', 0):.0f} s + score {s.get('score', 0):.0f} s "
        f"({r['scored']} images) + rank {s.get('rank', 0):.3f} s + store {s.get('store', 0):.2f} s; "
        f"val mIoU {r['miou']:.3f}"
    )
    print(f"pseudo-labels: {p['stored']} images in {p['seconds']:.0f} s = {p['images_per_second']:.2f} images/s")
    print(f"load average at the end: {load}")


def _existing(url: str) -> int | None:
    """The bench project of an earlier run, if the database holds one."""
    try:
        with session_scope(url) as session:
            return session.scalar(select(Project.id).where(Project.name == PROJECT))
    except Exception:  # no database or no schema yet
        return None


if __name__ == "__main__":
    main()
