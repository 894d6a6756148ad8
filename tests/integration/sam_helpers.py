"""Helpers of the SAM route tests: a project holding the disc scene, uploaded through the API."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from ml.sam.scenes import disc_scene
from tests.factories import png_bytes

SIZE = (240, 320)  # height, width
CENTRE = (120.0, 100.0)  # x, y
RADIUS = 45


def scene(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    return disc_scene(SIZE[0], SIZE[1], CENTRE, RADIUS, seed=seed)


def upload(client: TestClient, headers: dict[str, str], project_id: int, image: np.ndarray, name: str) -> int:
    answer = client.post(
        f"/api/v1/projects/{project_id}/images",
        files=[("files", (name, png_bytes(image), "image/png"))],
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    item = answer.json()["items"][0]
    assert item["status"] == "stored", item
    return int(item["image_id"])


def png_mask(content: bytes) -> np.ndarray:
    picture = PILImage.open(io.BytesIO(content))
    assert picture.mode == "L"
    values = np.asarray(picture)
    assert set(np.unique(values)) <= {0, 255}
    return values == 255
