"""What the browser tests share: the web project they annotate, a fresh page with its errors collected, sign-in,
screenshots (test-artifacts/webapp/, git-ignored; MARSLABEL_TEST_ARTIFACTS moves it), and reading or drawing on the
annotation view in image pixels."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from ml.sam.scenes import disc_scene
from server.demo import S5MARS_CLASSES
from server.models import Split as ImageSplit
from server.models import User
from server.store.images import add_image
from server.store.projects import create_project
from tests.factories import add_synthetic_scenes, join_projects, png_bytes

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MARSLABEL_TEST_ARTIFACTS", REPO / "test-artifacts")) / "webapp"
VIEWPORT = {"width": 1280, "height": 800}
DISC_SIZE = (240, 320)  # height, width
DISC_CENTRE = (120.0, 100.0)  # x, y
DISC_RADIUS = 45
SCENE = 64
SOIL, SAND, BEDROCK = 2, 3, 4  # S5Mars class ids used for drawing


def make_web_project(session: Session) -> tuple[int, int, np.ndarray]:
    """A disc scene first in import order (the queue serves it first), then 10 synthetic pool scenes (4 with a
    human label) and 2 labelled val scenes. Returns (project id, disc image id, disc mask)."""
    project = create_project(session, "gale-web", S5MARS_CLASSES)
    image, disc = disc_scene(*DISC_SIZE, DISC_CENTRE, DISC_RADIUS, seed=3)
    stored = add_image(session, project, "disc.png", png_bytes(image), split=ImageSplit.pool, author_id=None)
    assert stored.status == "stored", stored
    disc_id = stored.image_id
    add_synthetic_scenes(session, project, pool=10, labeled=4, val=2, size=SCENE, seed=2000)
    for user in session.scalars(select(User)):  # the role users are members, in their account's role
        join_projects(session, user)
    session.commit()
    assert disc_id is not None
    return project.id, disc_id, disc


def new_page(chromium: Any) -> tuple[Any, Any, list[str]]:
    """A fresh context (its own sessionStorage) at 1280×800 with page errors collected."""
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            failures.append(f"console: {message.text}")
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    # Failed answers by URL (the console line names only the status); a test removes those it caused on purpose.
    page.on(
        "response",
        lambda response: failures.append(f"HTTP {response.status} {response.url}") if response.status >= 400 else None,
    )
    return context, page, failures


def shot(page: Any, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(page: Any, base: str, token: str) -> None:
    page.goto(base + "/")  # the front page redirects to the web app
    assert page.url.endswith("/app/"), page.url
    page.wait_for_selector("#sign-in:not([hidden])")
    page.fill("#token", token)
    page.click("#sign-in-button")
    page.wait_for_selector("#projects:not([hidden]) tbody tr")


def screen_point(page: Any, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel (x, y) in the annotation canvas."""
    return page.evaluate(
        """([x, y]) => {
          const rect = document.getElementById('view').getBoundingClientRect();
          const v = window.annotator.view;
          return [rect.left + v.x + x * v.scale, rect.top + v.y + y * v.scale];
        }""",
        [x, y],
    )


def browser_mask(page: Any) -> np.ndarray:
    width, height, values = page.evaluate(
        "() => [window.annotator.image.width, window.annotator.image.height, Array.from(window.annotator.editor.mask)]"
    )
    return np.asarray(values, np.uint8).reshape(height, width)


def stroke(page: Any, points: list[tuple[float, float]]) -> None:
    first = screen_point(page, *points[0])
    page.mouse.move(*first)
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*screen_point(page, *point), steps=8)
    page.mouse.up()


def stored_mask(api: httpx.Client, project_id: int, image_id: int) -> tuple[int, np.ndarray]:
    answer = api.get(f"/api/v1/projects/{project_id}/images/{image_id}/masks/latest")
    assert answer.status_code == 200, answer.text
    return int(answer.headers["X-Mask-Version"]), np.asarray(PILImage.open(io.BytesIO(answer.content)))


def wait_ready(page: Any, image_id: int | None = None) -> None:
    page.wait_for_function("document.body?.dataset.ready === 'true' || document.body?.dataset.ready === 'error'")
    assert page.evaluate("document.body.dataset.ready") == "true", page.inner_text("#messages")
    if image_id is not None:
        assert page.evaluate("document.body.dataset.imageId") == str(image_id)


def canvas_pixel(page: Any, x: float, y: float) -> list[int]:
    """The RGBA the view's canvas shows at image pixel (x, y), after the next two animation frames."""
    return page.evaluate(
        """async ([x, y]) => {
          await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
          const canvas = document.getElementById('view');
          const v = window.annotator.view;
          const ratio = window.devicePixelRatio || 1;
          const sx = Math.floor((v.x + x * v.scale) * ratio);
          const sy = Math.floor((v.y + y * v.scale) * ratio);
          return Array.from(canvas.getContext('2d').getImageData(sx, sy, 1, 1).data);
        }""",
        [x, y],
    )
