"""Query rounds end to end: API → Redis → a real worker process training, scoring and ranking a tiny
synthetic project → the queue serving the ranking → labels → a second round → pseudo-labels."""

from __future__ import annotations

import concurrent.futures
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ml.sam.models import sha256_of
from server.db import get_sessionmaker
from server.demo import S5MARS_CLASSES
from server.models import Image, ImageStatus, JobStatus, MaskSource, MaskVersion, ModelVersion, Role, Round, Score
from server.models import Split as ImageSplit
from server.settings import Settings
from tests.factories import add_synthetic_scenes, make_project, png_bytes
from tests.integration.conftest import TERMINAL, wait_for_job

pytestmark = pytest.mark.ml
SIZE = 64
TINY = {"profile": "cpu", "steps": 4, "crop_size": SIZE, "score_batch_size": 4}
ONE_IMAGE = {"method": "supervised", "strategy": "random", "budget": 1, **TINY}


def make_synthetic_project(session: Session, *, pool: int = 12, labeled: int = 4, val: int = 2, name: str = "gale"):
    """A project of synthetic scenes: `labeled` human-labelled pool images, `val` labelled val images, the rest
    of the pool unlabelled. Returns (project id, {image id: ground-truth label})."""
    project = make_project(session, name, S5MARS_CLASSES)  # the test users are its members
    truth = add_synthetic_scenes(session, project, pool=pool, labeled=labeled, val=val, size=SIZE)
    return project.id, truth


def _start(client: TestClient, headers: dict[str, str], project_id: int, **body: object):
    return client.post(f"/api/v1/projects/{project_id}/rounds", json=body, headers=headers)


def _wait_round(settings: Settings, job_id: int, worker, timeout: float = 300):
    factory = get_sessionmaker(settings.resolved_database_url)
    done = wait_for_job(factory, job_id, until=lambda row: row.status in TERMINAL, timeout=timeout)
    assert done.status == JobStatus.done, (done.error, worker.log()[-4000:])
    return done


def _label_png(client: TestClient, headers: dict[str, str], project_id: int, image_id: int) -> np.ndarray:
    response = client.get(f"/api/v1/projects/{project_id}/images/{image_id}/masks/latest", headers=headers)
    assert response.status_code == 200, response.text
    return np.asarray(PILImage.open(io.BytesIO(response.content)))


def test_round_ranks_queue_then_second_round_and_pseudo_labels(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    project_id, truth = make_synthetic_project(session)
    lead, annotator = headers[Role.lead], headers[Role.annotator]

    # Round 1: cps-mars + ueq, budget 3 images.
    response = _start(job_client, lead, project_id, method="cps-mars", strategy="ueq", budget=3, **TINY)
    assert response.status_code == 202, response.text
    first = response.json()
    # The answer is read after the job was sent: a quick worker may have claimed it already.
    assert first["status"] in ("queued", "running") and first["index"] == 1 and first["budget"] == 3
    assert first["job"]["kind"] == "round" and first["labeled_count"] == 4
    job = _wait_round(job_settings, first["job_id"], celery_worker)
    assert set(job.result["seconds"]) == {"train", "evaluate", "score", "rank", "store"}

    body = job_client.get(f"/api/v1/projects/{project_id}/rounds/{first['id']}", headers=annotator).json()
    assert body["status"] == "done" and body["finished_at"] is not None
    version = body["model_version"]
    assert version["method"] == "cps-mars" and version["labeled_count"] == 4
    assert version["metrics"]["validation"]["source"] == "val split"
    assert version["metrics"]["validation"]["images"] == 2
    assert 0.0 <= version["metrics"]["miou"] <= 1.0
    assert set(version["metrics"]["per_class_iou_by_name"]) <= {c["name"] for c in S5MARS_CLASSES}
    with get_sessionmaker(job_settings.resolved_database_url)() as check:
        stored = check.get(ModelVersion, version["id"])
        assert stored is not None and stored.round_id == first["id"]
        artifact = Path(stored.artifact_path)
        assert artifact.is_file() and sha256_of(artifact) == stored.artifact_sha256 == version["artifact_sha256"]
        assert artifact.is_relative_to(job_settings.artifacts_dir)

    # Every unlabelled pool image got a score and a rank 1..n, best first.
    scores = job_client.get(f"/api/v1/projects/{project_id}/rounds/{first['id']}/scores", headers=lead).json()
    unlabeled = sorted(
        session.scalars(
            select(Image.id).where(
                Image.project_id == project_id, Image.split == ImageSplit.pool, Image.status == ImageStatus.unlabeled
            )
        )
    )
    assert scores["total"] == len(unlabeled) == 8
    assert sorted(item["image_id"] for item in scores["items"]) == unlabeled
    assert [item["rank"] for item in scores["items"]] == list(range(1, 9))
    values = [item["score"] for item in scores["items"]]
    assert values == sorted(values, reverse=True)

    # The queue serves the ranking: the annotator gets ranks 1, 2, 3 in order, labels each, saves.
    served = []
    for _ in range(3):
        claim = job_client.post(f"/api/v1/projects/{project_id}/queue/next", headers=annotator).json()
        served.append((claim["image"]["id"], claim["rank"]))
        mask = png_bytes(truth[claim["image"]["id"]])
        saved = job_client.post(
            f"/api/v1/projects/{project_id}/images/{claim['image']['id']}/masks",
            files={"mask": ("m.png", mask, "image/png")},
            headers=annotator,
        )
        assert saved.status_code == 201, saved.text
    assert served == [(item["image_id"], item["rank"]) for item in scores["items"][:3]]

    # Round 2 (supervised, random) trains on the 7 labels now there.
    response = _start(job_client, lead, project_id, method="supervised", strategy="random", budget="25%", **TINY)
    assert response.status_code == 202, response.text
    second = response.json()
    assert second["index"] == 2 and second["labeled_count"] == 7 and second["budget"] == 3  # 25% of 12
    _wait_round(job_settings, second["job_id"], celery_worker)

    metrics = job_client.get(f"/api/v1/projects/{project_id}/metrics", headers=headers[Role.client]).json()
    assert [(p["round_index"], p["labeled_count"], p["strategy"]) for p in metrics["curve"]] == [
        (1, 4, "ueq"),
        (2, 7, "random"),
    ]
    assert all(0.0 <= p["miou"] <= 1.0 for p in metrics["curve"])
    assert [r["status"] for r in metrics["rounds"]] == ["done", "done"]
    png = job_client.get(f"/api/v1/projects/{project_id}/metrics/curve.png", headers=lead)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert PILImage.open(io.BytesIO(png.content)).size[0] > 100

    # Pseudo-labels from round 1's model with threshold 1.0: every pixel is below it, so all ignore.
    models = job_client.get(f"/api/v1/projects/{project_id}/models", headers=lead).json()
    assert [m["round_id"] for m in models] == [first["id"], second["id"]]
    job = job_client.post(
        f"/api/v1/projects/{project_id}/pseudo-labels",
        json={"model_version_id": models[0]["id"], "threshold": 1.0},
        headers=lead,
    )
    assert job.status_code == 202, job.text
    done = _wait_round(job_settings, job.json()["id"], celery_worker)
    without_human = [i for i in unlabeled if i not in {image_id for image_id, _ in served}]
    assert done.result["stored"] == len(without_human) == 5
    for image_id in without_human:
        assert (_label_png(job_client, annotator, project_id, image_id) == 255).all()

    # Then the latest model (default), threshold 0: every pixel labelled, a new version on top; human labels stay.
    job = job_client.post(f"/api/v1/projects/{project_id}/pseudo-labels", json={"threshold": 0}, headers=lead)
    assert job.status_code == 202, job.text
    done = _wait_round(job_settings, job.json()["id"], celery_worker)
    assert done.result["stored"] == 5 and done.result["skipped_human"] == 0
    with get_sessionmaker(job_settings.resolved_database_url)() as check:
        for image_id in without_human:
            versions = check.scalars(
                select(MaskVersion).where(MaskVersion.image_id == image_id).order_by(MaskVersion.version)
            ).all()
            assert [(v.source, v.model_version_id) for v in versions] == [
                (MaskSource.model, models[0]["id"]),
                (MaskSource.model, models[1]["id"]),
            ]
            assert versions[-1].labeled_fraction == 1.0 and 0 < versions[-1].confidence <= 1
        for image_id, _rank in served:
            sources = check.scalars(select(MaskVersion.source).where(MaskVersion.image_id == image_id)).all()
            assert sources == [MaskSource.human]
    # An annotator starts a correction from the pseudo-label: a human save on top of the model version.
    target = without_human[0]
    saved = job_client.post(
        f"/api/v1/projects/{project_id}/images/{target}/masks",
        files={"mask": ("m.png", png_bytes(truth[target]), "image/png")},
        data={"base_version": "2"},
        headers=annotator,
    )
    assert saved.status_code == 201 and saved.json()["version"] == 3, saved.text
    check_exports(job_client, headers[Role.client], project_id, job_settings)


def _effective_masks(settings: Settings, project_id: int) -> dict[str, tuple[np.ndarray, str]]:
    """{file stem: (latest human-side mask, else latest model mask; 'human' | 'model')} from the database."""
    found: dict[str, tuple[np.ndarray, str]] = {}
    with get_sessionmaker(settings.resolved_database_url)() as check:
        for image in check.scalars(select(Image).where(Image.project_id == project_id)):
            versions = check.scalars(
                select(MaskVersion).where(MaskVersion.image_id == image.id).order_by(MaskVersion.version)
            ).all()
            human = [v for v in versions if v.source != MaskSource.model]
            chosen = human[-1] if human else (versions[-1] if versions else None)
            if chosen is not None:
                mask = np.asarray(PILImage.open(io.BytesIO(chosen.png)))
                found[Path(image.file_name).stem] = (mask, "human" if human else "model")
    return found


def check_exports(client: TestClient, headers: dict[str, str], project_id: int, settings: Settings) -> None:
    """Each export format, read back, holds the stored effective masks and says which are human."""
    import json
    import zipfile

    from pycocotools import mask as rle

    expected = _effective_masks(settings, project_id)
    assert {source for _, source in expected.values()} == {"human", "model"}
    for fmt in ("project", "s5mars", "coco"):
        response = client.get(f"/api/v1/projects/{project_id}/export", params={"format": fmt}, headers=headers)
        assert response.status_code == 200, response.text
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        if fmt == "coco":
            coco = json.loads(archive.read("annotations.json"))
            names = {entry["id"]: Path(entry["file_name"]).stem for entry in coco["images"]}
            rebuilt = {names[i]: np.full(expected[names[i]][0].shape, 255, np.uint8) for i in names}
            for annotation in coco["annotations"]:
                stem = names[annotation["image_id"]]
                assert annotation["source"] == expected[stem][1]
                rebuilt[stem][rle.decode(annotation["segmentation"]).astype(bool)] = annotation["category_id"] - 1
            assert set(rebuilt) == set(expected)
            for stem, mask in rebuilt.items():
                np.testing.assert_array_equal(mask, expected[stem][0])
            continue
        manifest = {row["name"]: row for row in json.loads(archive.read("manifest.json"))["labels"]}
        assert set(manifest) == set(expected)
        for stem, (mask, source) in expected.items():
            assert manifest[stem]["source"] == source
            exported = np.asarray(PILImage.open(io.BytesIO(archive.read(f"labels/{stem}.png"))))
            if fmt == "s5mars":  # raw ids: class k → k + 1, ignore → 0
                mask = np.where(mask == 255, 0, mask + 1).astype(np.uint8)
            np.testing.assert_array_equal(exported, mask)


def test_concurrent_round_requests_give_one_round_and_one_409(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    project_id, _ = make_synthetic_project(session, pool=6, labeled=2, val=0, name="concurrent")
    barrier = threading.Barrier(2)

    def request(_: int):
        with TestClient(job_client.app) as client:
            barrier.wait()
            return _start(
                client, headers[Role.lead], project_id, method="supervised", strategy="random", budget=1, **TINY
            )

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(request, range(2)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409], [a.text for a in answers]
    accepted = next(a for a in answers if a.status_code == 202).json()
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["round_id"] == accepted["id"] and refused["job_id"] == accepted["job_id"]
    assert f"round {accepted['id']}" in refused["detail"]
    assert session.scalar(select(func.count()).select_from(Round).where(Round.project_id == project_id)) == 1
    done = _wait_round(job_settings, accepted["job_id"], celery_worker)
    # No held-back images without a val split: a fifth of the 2 labels, at least one.
    assert done.result["validation"] == {"source": "held-back labelled images", "images": 1}
    # Once it ended, a new round may start.
    again = _start(job_client, headers[Role.lead], project_id, **ONE_IMAGE)
    assert again.status_code == 202, again.text
    _wait_round(job_settings, again.json()["job_id"], celery_worker)


def test_cancelled_round_leaves_no_model_version(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    project_id, _ = make_synthetic_project(session, pool=6, labeled=2, val=1, name="cancelled")
    response = _start(
        job_client, headers[Role.lead], project_id, method="supervised", strategy="entropy", budget=1,
        profile="cpu", steps=5_000, crop_size=SIZE,
    )  # fmt: skip
    assert response.status_code == 202, response.text
    job_id, round_id = response.json()["job_id"], response.json()["id"]
    factory = get_sessionmaker(job_settings.resolved_database_url)
    wait_for_job(factory, job_id, until=lambda row: row.status == JobStatus.running and row.progress > 0, timeout=120)
    cancel = job_client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers[Role.lead])
    assert cancel.status_code == 200, cancel.text
    final = wait_for_job(factory, job_id, until=lambda row: row.status in TERMINAL, timeout=60)
    assert final.status == JobStatus.cancelled
    with factory() as check:
        assert check.get(Round, round_id).status.value == "cancelled"
        assert (
            check.scalar(select(func.count()).select_from(ModelVersion).where(ModelVersion.round_id == round_id)) == 0
        )
        assert check.scalar(select(func.count()).select_from(Score).where(Score.round_id == round_id)) == 0
    assert not (job_settings.artifacts_dir / "training" / f"job-{job_id}.pt").exists()


def test_round_errors_are_clear(job_client: TestClient, session: Session, headers) -> None:
    project_id, _ = make_synthetic_project(session, pool=3, labeled=0, val=0, name="errors")
    lead = headers[Role.lead]
    none_labeled = _start(job_client, lead, project_id, method="cps-mars", strategy="ueq", budget=1)
    assert none_labeled.status_code == 409 and "no human-labelled image" in none_labeled.json()["detail"]
    for body, words in [
        ({"budget": "3 %x"}, "neither a count"),
        ({"budget": "0%"}, "(0, 100]"),
        ({"budget": 0}, "must be a count of 1"),
        ({"budget": True}, "boolean where the field takes integer or string"),
        ({"strategy": "coreset"}, "strategy"),
        ({"method": "mean-teacher"}, "method"),
        ({"steps": 0}, "steps"),
        ({"profile": "tpu"}, "profile"),
        ({"surprise": 1}, "surprise"),
    ]:
        answer = _start(job_client, lead, project_id, **body)
        assert answer.status_code == 422 and words in answer.text, (body, answer.text)
    assert job_client.get(f"/api/v1/projects/{project_id}/rounds/999999", headers=lead).status_code == 404
    no_model = job_client.post(f"/api/v1/projects/{project_id}/pseudo-labels", json={}, headers=lead)
    assert no_model.status_code == 404 and "no round has finished" in no_model.json()["detail"]
    wrong = job_client.post(f"/api/v1/projects/{project_id}/pseudo-labels", json={"threshold": 1.5}, headers=lead)
    assert wrong.status_code == 422
    assert session.scalar(select(func.count()).select_from(Round)) == 0


def test_auto_round_starts_after_enough_new_labels(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    project_id, truth = make_synthetic_project(session, pool=6, labeled=1, val=0, name="auto")
    lead, annotator = headers[Role.lead], headers[Role.annotator]
    settings_url = f"/api/v1/projects/{project_id}/ml-settings"
    defaults = {"method": "supervised", "strategy": "entropy", "budget": 2, **TINY}
    answer = job_client.patch(settings_url, json={"auto_round_after": 2, "round_defaults": defaults}, headers=lead)
    assert answer.status_code == 200, answer.text
    assert answer.json()["auto_round_after"] == 2 and answer.json()["round_defaults"]["strategy"] == "entropy"
    refused = job_client.patch(settings_url, json={"auto_round_after": 0}, headers=lead)
    assert refused.status_code == 422
    assert job_client.patch(settings_url, json={"auto_round_after": 3}, headers=annotator).status_code == 403

    unlabeled = sorted(
        session.scalars(select(Image.id).where(Image.project_id == project_id, Image.status == ImageStatus.unlabeled))
    )

    def label(image_id: int) -> None:
        saved = job_client.post(
            f"/api/v1/projects/{project_id}/images/{image_id}/masks",
            files={"mask": ("m.png", png_bytes(truth[image_id]), "image/png")},
            headers=annotator,
        )
        assert saved.status_code == 201, saved.text

    label(unlabeled[0])  # 1 new label since no round: not yet (the imported label counts too: 2 ≥ 2)
    rounds = job_client.get(f"/api/v1/projects/{project_id}/rounds", headers=lead).json()
    assert len(rounds) == 1 and rounds[0]["trigger"] == "auto" and rounds[0]["strategy"] == "entropy"
    _wait_round(job_settings, rounds[0]["job_id"], celery_worker)
    label(unlabeled[1])  # 1 label since that round began: below 2, nothing starts
    assert len(job_client.get(f"/api/v1/projects/{project_id}/rounds", headers=lead).json()) == 1
    label(unlabeled[2])
    rounds = job_client.get(f"/api/v1/projects/{project_id}/rounds", headers=lead).json()
    assert [(r["index"], r["trigger"]) for r in rounds] == [(1, "auto"), (2, "auto")]
    assert rounds[1]["labeled_count"] == 4
    _wait_round(job_settings, rounds[1]["job_id"], celery_worker)


def test_worker_killed_mid_training_reruns_the_round_and_records_one_model(
    db_url: str, redis_url: str, import_root: Path, tmp_path: Path, session: Session, headers
) -> None:
    from server.app import create_app
    from tests.integration.conftest import start_reaper, start_worker

    own_broker = redis_url.rsplit("/", 1)[0] + "/14"
    import redis

    redis.Redis.from_url(own_broker).flushdb()
    settings = Settings(
        database_url=db_url, broker_url=own_broker, import_root=import_root, data_dir=tmp_path / "data",
        job_heartbeat_seconds=4,
    )  # fmt: skip
    project_id, _ = make_synthetic_project(session, pool=6, labeled=3, val=1, name="killed")
    with TestClient(create_app(settings)) as client:
        response = _start(
            client, headers[Role.lead], project_id, method="supervised", strategy="entropy", budget=1,
            profile="cpu", steps=40, crop_size=SIZE,
        )  # fmt: skip
    assert response.status_code == 202, response.text
    job_id, round_id = response.json()["job_id"], response.json()["id"]
    factory = get_sessionmaker(settings.resolved_database_url)
    first = start_worker(settings, tmp_path / "first.log")
    try:
        wait_for_job(factory, job_id, until=lambda row: row.status == JobStatus.running and row.progress > 0.02)
    finally:
        first.kill()  # SIGKILL to the whole process group, mid-training
    with factory() as check:
        assert check.scalar(select(func.count()).select_from(ModelVersion)) == 0
        assert check.get(Round, round_id).status.value == "running"

    reaper = start_reaper(settings, tmp_path / "reaper.log")
    second = start_worker(settings, tmp_path / "second.log")
    try:
        final = wait_for_job(factory, job_id, until=lambda row: row.status in TERMINAL, timeout=300)
    finally:
        second.stop()
        reaper.stop()
    with factory() as check:
        versions = check.scalars(select(ModelVersion).where(ModelVersion.round_id == round_id)).all()
        status = check.get(Round, round_id).status.value
    # Re-run to the end by the reaper and the second worker: one model version, the round done. (Were it
    # failed instead, there must be none.)
    assert final.status == JobStatus.done and final.attempts == 2, (final.error, second.log()[-3000:])
    assert len(versions) == 1 and status == "done"
