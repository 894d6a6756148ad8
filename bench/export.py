"""Bulk label export: a project of N real AI4Mars images (default the dev set's 2,100 pool images) whose labels
are stored as model masks of one model version (the first 63, 3 %, as human masks), exported through a real
API server in each format, with and without the images. Reports images per second, zip bytes and the time
to the first byte; checks every zip; measures the export's peak Python memory in-process once.

Run: .venv/bin/python bench/export.py [--images 2100] [--human 63]. Writes bench/results/export.json.
Uses a database of its own (marslabel_bench_export, or MARSLABEL_BENCH_EXPORT_DATABASE_URL) so that it never
empties the database of another benchmark running beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `bench.common` when run as a script

import argparse
import io
import json
import os
import tempfile
import time
import tracemalloc
import zipfile
from typing import Any

import httpx
from sqlalchemy import make_url, text

from bench.common import DEFAULT_BENCH_DATABASE_URL, api_server, bench_database, write_result
from server.db import get_engine, session_scope
from server.label_export import ExportOptions, ExportProject, export_zip
from server.label_schemas import ExportFormat
from server.models import Image, MaskSource, ModelVersion, Project, Role, Split
from server.store.images import add_image
from server.store.labels import LabelSource
from server.store.limits import UploadLimits
from server.store.masks import add_mask_version
from server.store.projects import create_project
from server.store.users import create_user

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ai4mars-msl256-dev"
LIMITS = UploadLimits(max_upload_bytes=50_000_000, max_image_pixels=50_000_000)
FORMATS = [ExportFormat.project, ExportFormat.s5mars, ExportFormat.coco]


def export_database() -> str:
    default = make_url(os.environ.get("MARSLABEL_BENCH_DATABASE_URL", DEFAULT_BENCH_DATABASE_URL))
    url = os.environ.get("MARSLABEL_BENCH_EXPORT_DATABASE_URL") or default.set(
        database=f"{default.database}_export"
    ).render_as_string(hide_password=False)
    os.environ["MARSLABEL_BENCH_DATABASE_URL"] = url  # bench_database() reads this: create, migrate, empty
    return bench_database()


def sample_ids(count: int) -> list[tuple[str, Split]]:
    pool = [(line.strip(), Split.pool) for line in (DATA / "splits" / "pool.txt").read_text().split() if line.strip()]
    val = [(line.strip(), Split.val) for line in (DATA / "splits" / "val.txt").read_text().split() if line.strip()]
    chosen = (pool + val)[:count]
    if len(chosen) < count:
        raise SystemExit(f"the dev set has {len(pool) + len(val)} images, fewer than --images {count}")
    return chosen


def seed_project(url: str, count: int, human: int) -> tuple[int, str]:
    """Images and labels added through the store functions (the upload path's checks included)."""
    classes = json.loads((DATA / "classes.json").read_text())["classes"]
    with session_scope(url) as session:
        _user, token = create_user(session, "bench-client", Role.client)
        project = create_project(session, "ai4mars-export-bench", classes)
        model = ModelVersion(
            project_id=project.id,
            method="cps-mars",
            config={"note": "bench: the dev set's own labels stand in for pseudo-labels"},
            metrics={},
            labeled_count=human,
            artifact_path="bench/none.pt",
            artifact_sha256="0" * 64,
        )
        session.add(model)
        session.flush()
        project_id, model_id = project.id, model.id
    started = time.perf_counter()
    ids = sample_ids(count)
    for start in range(0, len(ids), 200):
        with session_scope(url) as session:
            project = session.get(Project, project_id)
            assert project is not None
            for index, (sample_id, split) in enumerate(ids[start : start + 200], start=start):
                data = (DATA / "images" / f"{sample_id}.jpg").read_bytes()
                result = add_image(session, project, f"{sample_id}.jpg", data, split=split, limits=LIMITS)
                assert result.status == "stored", result
                image = session.get_one(Image, result.image_id)
                label = (DATA / "labels" / f"{sample_id}.png").read_bytes()
                if index < human:
                    add_mask_version(session, image, label, source=MaskSource.human, base_version=None, limits=LIMITS)
                else:
                    confidence = 0.5 + 0.5 * ((index * 7919) % 1000) / 1000  # spread, as a model's would be
                    add_mask_version(
                        session,
                        image,
                        label,
                        source=MaskSource.model,
                        base_version=None,
                        model_version_id=model_id,
                        confidence=confidence,
                        limits=LIMITS,
                    )
        print(f"  stored {min(start + 200, count)}/{count} images with labels", flush=True)
    with get_engine(url).connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    print(
        f"seeded {count} images ({human} human labels, {count - human} model) in {time.perf_counter() - started:.1f} s"
    )
    return project_id, token


def check_zip(data: bytes, export_format: ExportFormat, count: int, with_images: bool) -> None:
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    if export_format == ExportFormat.coco:
        document = json.loads(archive.read("annotations.json"))
        assert len(document["images"]) == count, len(document["images"])
    else:
        assert sum(n.startswith("labels/") for n in names) == count
    assert sum(n.startswith("images/") for n in names) == (count if with_images else 0)


def timed_export(client: httpx.Client, project_id: int, export_format: ExportFormat, with_images: bool) -> dict:
    params = {"format": export_format.value, "images": str(with_images).lower()}
    started = time.perf_counter()
    first_byte = None
    buffer = io.BytesIO()
    with client.stream("GET", f"/api/v1/projects/{project_id}/export", params=params) as response:
        response.raise_for_status()
        for piece in response.iter_bytes():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            buffer.write(piece)
    return {"seconds": time.perf_counter() - started, "first_byte_s": first_byte or 0.0, "data": buffer.getvalue()}


def peak_memory(url: str, project_id: int, classes: list[dict[str, Any]]) -> dict[str, float]:
    """The largest export (project layout with images) run in-process under tracemalloc: Python's peak
    allocation while streaming, against the size of the zip it made."""
    project = ExportProject(id=project_id, name="bench", classes=classes, ignore_index=255)
    options = ExportOptions(format=ExportFormat.project, include_images=True, source=LabelSource.all, split=None)
    tracemalloc.start()
    total = 0
    for piece in export_zip(url, project, options):
        total += len(piece)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"zip_megabytes": round(total / 1e6, 2), "peak_python_megabytes": round(peak / 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2100)
    parser.add_argument("--human", type=int, default=63, help="how many of them get a human label instead")
    parser.add_argument("--repeats", type=int, default=2, help="runs per format; the fastest is reported")
    args = parser.parse_args()

    load_before = os.getloadavg()
    url = export_database()
    project_id, token = seed_project(url, args.images, min(args.human, args.images))
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as data_dir,
        api_server(url, Path(data_dir)) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client,
    ):
        for export_format in FORMATS:
            for with_images in (False, True):
                runs = [timed_export(client, project_id, export_format, with_images) for _ in range(args.repeats)]
                best = min(runs, key=lambda run: run["seconds"])
                check_zip(best["data"], export_format, args.images, with_images)
                figures = {
                    "format": export_format.value,
                    "images_included": with_images,
                    "seconds": round(best["seconds"], 2),
                    "all_runs_s": [round(run["seconds"], 2) for run in runs],
                    "images_per_second": round(args.images / best["seconds"], 1),
                    "zip_bytes": len(best["data"]),
                    "first_byte_s": round(best["first_byte_s"], 3),
                }
                results.append(figures)
                print(
                    f"{export_format.value:>8} images={str(with_images).lower():<5} {figures['seconds']:>6.2f} s "
                    f"{figures['images_per_second']:>7.1f} images/s {figures['zip_bytes'] / 1e6:>7.2f} MB "
                    f"first byte {figures['first_byte_s']:.3f} s",
                    flush=True,
                )
    classes = json.loads((DATA / "classes.json").read_text())["classes"]
    memory = peak_memory(url, project_id, classes)
    print(f"in-process project export with images: {memory}")
    load_after = os.getloadavg()
    path = write_result(
        "export",
        {
            "dataset": "ai4mars-msl256-dev (256x256 JPEG images, single-channel label PNGs)",
            "images": args.images,
            "human_labels": min(args.human, args.images),
            "model_labels": args.images - min(args.human, args.images),
            "repeats": args.repeats,
            "path": "HTTP GET /export through `marslabel serve --no-worker` (uvicorn), zip read to the end",
            "exports": results,
            "in_process_memory": memory,
            "cpu_note": (
                "measured while a background ML benchmark (training) held the CPU: the machine's 2 cores were "
                "shared, so these figures are lower bounds of an idle machine's"
            ),
            "load_average_1_5_15": {
                "before": [round(v, 2) for v in load_before],
                "after": [round(v, 2) for v in load_after],
            },
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
