"""The embedded default (a SQLite file) serves the same API: upload, queue, mask save, listing."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient

from server.app import create_app
from server.db import session_scope
from server.models import Role
from server.schema import upgrade_to_head
from server.settings import Settings
from server.store.users import create_user
from tests.factories import image_bytes, mask_png, project_payload


def test_the_annotation_loop_on_sqlite(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    upgrade_to_head(settings.resolved_database_url)
    with session_scope(settings.resolved_database_url) as session:
        _user, token = create_user(session, "lead", Role.lead)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client:
        project = client.post("/api/v1/projects", json=project_payload(), headers=auth).json()
        base = f"/api/v1/projects/{project['id']}"
        files = [("files", (f"{n}.png", image_bytes(16, 16, seed=n), "image/png")) for n in range(3)]
        assert client.post(f"{base}/images", files=files, headers=auth).json()["stored"] == 3
        claimed = client.post(f"{base}/queue/next", headers=auth).json()
        assert claimed["image"]["file_name"] == "0.png" and claimed["claim_expires_at"].endswith("Z")
        assert client.post(f"{base}/queue/next", headers=auth).json()["image"]["id"] == claimed["image"]["id"]
        image_id = claimed["image"]["id"]
        saved = client.post(
            f"{base}/images/{image_id}/masks", files={"mask": ("m.png", mask_png(16, 16), "image/png")}, headers=auth
        )
        assert saved.status_code == 201, saved.text
        assert client.post(f"{base}/queue/next", headers=auth).json()["image"]["file_name"] == "1.png"
        labeled = client.get(f"{base}/images", params={"status": "labeled"}, headers=auth).json()
        assert [i["id"] for i in labeled["items"]] == [image_id]


def test_concurrent_saves_on_one_base_store_one_version(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    upgrade_to_head(settings.resolved_database_url)
    with session_scope(settings.resolved_database_url) as session:
        _user, token = create_user(session, "lead", Role.lead)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client:
        project = client.post("/api/v1/projects", json=project_payload(), headers=auth).json()
        base = f"/api/v1/projects/{project['id']}"
        files = [("files", ("a.png", image_bytes(16, 16), "image/png"))]
        image_id = client.post(f"{base}/images", files=files, headers=auth).json()["items"][0]["image_id"]
        statuses: list[int] = []
        start = threading.Barrier(6)

        def save(value: int) -> None:
            start.wait()
            answer = client.post(
                f"{base}/images/{image_id}/masks",
                files={"mask": ("m.png", mask_png(16, 16, values=(value,)), "image/png")},
                headers=auth,
            )
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=save, args=(n % 4,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [201] + [409] * 5
        history = client.get(f"{base}/images/{image_id}/masks", headers=auth).json()
        assert [h["version"] for h in history] == [1]
