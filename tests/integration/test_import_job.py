"""The import job end to end: API → Redis → a real worker process → progress rows → result."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.db import get_sessionmaker
from server.models import Image, JobStatus, MaskVersion, Role, Split
from server.settings import Settings
from tests.factories import make_project, png_bytes
from tests.integration.conftest import TERMINAL, make_project_folder, noise_image, wait_for_job


def _start(client: TestClient, headers: dict[str, str], project_id: int, path: str, **extra: object) -> dict:
    response = client.post(f"/api/v1/projects/{project_id}/imports", json={"path": path, **extra}, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def test_import_project_layout_end_to_end(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers, import_root: Path
) -> None:
    count, val = 600, 40
    make_project_folder(import_root / "mission-a", count, labeled_every=3, val=val, size=16)
    (import_root / "mission-a" / "images" / "broken.png").write_bytes(b"not a png at all")
    project = make_project(session)
    job = _start(job_client, headers[Role.lead], project.id, "mission-a")
    # The answer is read after the job was sent: a quick worker may have claimed it already.
    assert job["status"] in ("queued", "running") and job["kind"] == "import"

    # Watch the row while the worker moves it: progress only goes up, and is seen between 0 and 1.
    factory = get_sessionmaker(job_settings.resolved_database_url)
    seen: list[float] = []

    def record(row) -> bool:
        if row.status == JobStatus.running:
            seen.append(row.progress)
        return row.status in TERMINAL

    done = wait_for_job(factory, job["id"], until=record, timeout=180)
    assert done.status == JobStatus.done, (done.error, celery_worker.log()[-3000:])
    assert seen == sorted(seen)
    assert any(0 < p < 1 for p in seen), seen
    result = done.result
    assert result["layout"] == "project"
    assert (result["total"], result["stored"], result["duplicate"], result["rejected"]) == (count + 1, count, 0, 1)
    assert result["labeled"] == len(range(0, count, 3))
    assert result["rejections"][0]["file"] == "broken.png"
    assert "not an image" in result["rejections"][0]["reason"]
    assert done.attempts == 1 and done.progress == 1.0 and done.finished_at is not None

    # What the result says is in the database: images with their splits, labels as human mask versions.
    with factory() as check:
        splits = dict(
            check.execute(
                select(Image.split, func.count()).where(Image.project_id == project.id).group_by(Image.split)
            ).all()
        )
        assert splits == {Split.val: val, Split.pool: count - val}
        masks = check.scalar(
            select(func.count()).select_from(MaskVersion).join(Image).where(Image.project_id == project.id)
        )
        assert masks == result["labeled"]

    # The same folder again: every image is a duplicate, nothing new is stored.
    again = _start(job_client, headers[Role.lead], project.id, "mission-a")
    second = wait_for_job(factory, again["id"], until=lambda row: row.status in TERMINAL)
    assert second.status == JobStatus.done
    assert (second.result["stored"], second.result["duplicate"], second.result["rejected"]) == (0, count, 1)
    with factory() as check:
        assert check.scalar(select(func.count()).select_from(Image).where(Image.project_id == project.id)) == count

    # The jobs API agrees with the rows (the first import's end also queued SAM embeddings: test_sam_ahead.py).
    listed = job_client.get(
        f"/api/v1/projects/{project.id}/jobs", params={"kind": "import"}, headers=headers[Role.client]
    ).json()
    assert [j["id"] for j in listed] == [again["id"], job["id"]]
    one = job_client.get(f"/api/v1/jobs/{job['id']}", headers=headers[Role.annotator]).json()
    assert one["status"] == "done" and one["result"]["stored"] == count


def test_s5mars_layout_maps_raw_ids(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers, import_root: Path
) -> None:
    root = import_root / "s5mars-release"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    raw = np.arange(40 * 40, dtype=np.uint8).reshape(40, 40) % 10  # every raw id 0..9
    for i in range(3):
        (root / "images" / f"s{i}.jpg").write_bytes(_jpeg(noise_image(100 + i, 40)))
        (root / "labels" / f"s{i}.png").write_bytes(png_bytes(raw))
    project = make_project(session, classes=[{"id": k, "name": f"c{k}", "color": [k, k, k]} for k in range(9)])
    job = _start(job_client, headers[Role.admin], project.id, "s5mars-release", split="test")
    done = wait_for_job(get_sessionmaker(job_settings.resolved_database_url), job["id"], until=_terminal)
    assert done.status == JobStatus.done, done.error
    assert done.result["layout"] == "s5mars" and done.result["stored"] == 3 and done.result["labeled"] == 3
    with get_sessionmaker(job_settings.resolved_database_url)() as check:
        rows = check.execute(select(Image.split, MaskVersion.png).join(MaskVersion)).all()
    assert len(rows) == 3
    expected = np.where(raw == 0, 255, raw - 1)
    for split, mask_png in rows:
        assert split == Split.test
        stored = np.asarray(PILImage.open(io.BytesIO(mask_png)))
        np.testing.assert_array_equal(stored, expected)


def test_plain_layout_takes_nested_images(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers, import_root: Path
) -> None:
    root = import_root / "plain-drop"
    (root / "sol-0042").mkdir(parents=True)
    (root / "a.png").write_bytes(png_bytes(noise_image(7)))
    (root / "sol-0042" / "b.png").write_bytes(png_bytes(noise_image(8)))
    (root / "sol-0042" / "copy-of-a.png").write_bytes(png_bytes(noise_image(7)))
    (root / "notes.txt").write_text("not an image")
    project = make_project(session)
    job = _start(job_client, headers[Role.lead], project.id, "plain-drop", layout="plain")
    done = wait_for_job(get_sessionmaker(job_settings.resolved_database_url), job["id"], until=_terminal)
    assert done.status == JobStatus.done, done.error
    assert (done.result["layout"], done.result["stored"], done.result["duplicate"]) == ("plain", 2, 1)
    with get_sessionmaker(job_settings.resolved_database_url)() as check:
        names = set(check.scalars(select(Image.file_name)))
    assert names == {"a.png", "sol-0042/b.png"}


def _terminal(row) -> bool:
    return row.status in TERMINAL


def _jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()
