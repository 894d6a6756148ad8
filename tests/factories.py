"""Test data: image and mask bytes of a given size, projects."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from ml.synthetic import generate_scene
from server.models import Project, ProjectRole, Role, User
from server.models import Split as ImageSplit
from server.store.images import add_image
from server.store.members import add_member, member_role
from server.store.projects import create_project

DEFAULT_CLASSES: list[dict[str, Any]] = [
    {"id": 0, "name": "soil", "color": [120, 80, 40]},
    {"id": 1, "name": "bedrock", "color": [90, 90, 90]},
    {"id": 2, "name": "sand", "color": [230, 200, 120]},
    {"id": 3, "name": "big rock", "color": [200, 40, 40]},
]


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def image_bytes(width: int = 32, height: int = 24, *, fmt: str = "PNG", mode: str = "RGB", seed: int = 0) -> bytes:
    """Random-content image bytes: a different seed gives a different file (and sha256)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    picture = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


def mask_png(width: int = 32, height: int = 24, *, values: tuple[int, ...] = (0, 1, 255), mode: str = "L") -> bytes:
    """A mask that cycles through `values` row by row; mode L, P (a palette) or RGB (all channels equal)."""
    rows = np.array([values[y % len(values)] for y in range(height)], dtype=np.uint8)
    ids = np.repeat(rows[:, None], width, axis=1)
    if mode == "RGB":
        picture = Image.fromarray(np.stack([ids, ids, ids], axis=-1), "RGB")
    else:
        picture = Image.fromarray(ids, "L")
        if mode == "P":
            picture = picture.convert("L")
            picture.putpalette([c for i in range(256) for c in (i, 255 - i, i // 2)])
            picture = Image.frombytes("P", picture.size, ids.tobytes())
            picture.putpalette([c for i in range(256) for c in (i, 255 - i, i // 2)])
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def project_payload(name: str = "jezero", classes: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "test project",
        "classes": DEFAULT_CLASSES if classes is None else classes,
        **extra,
    }


def account_project_role(user: User) -> ProjectRole | None:
    """The project role a test user gets in the test's projects: that of their account's role (admins need none)."""
    return None if user.role is Role.admin else ProjectRole(user.role.value)


def join_projects(session: Session, user: User) -> None:
    """Make `user` a member of every project there is, in the project role of their account (not committed)."""
    role = account_project_role(user)
    if role is None:
        return
    for project in session.scalars(select(Project)):
        if member_role(session, project.id, user.id) is None:
            add_member(session, project, user, role)


def make_project(
    session: Session, name: str = "jezero", classes: list[dict[str, Any]] | None = None, *, members: bool = True
) -> Project:
    """A project written through the store and committed, so the app (another connection) sees it. With
    `members`, every user there is becomes a member in the project role of their account (role_tokens does
    the same for projects made before its users)."""
    project = create_project(session, name, classes or DEFAULT_CLASSES, description="test project")
    if members:
        for user in session.scalars(select(User)):
            role = account_project_role(user)
            if role is not None:
                add_member(session, project, user, role)
    session.commit()
    return project


def add_synthetic_scenes(
    session: Session, project: Project, *, pool: int, labeled: int, val: int, size: int, seed: int = 1000
) -> dict[int, np.ndarray]:
    """Synthetic Mars scenes (ml.synthetic) added to `project` and committed: `labeled` human-labelled pool
    images first, then unlabelled pool images, then `val` labelled val images. Returns {image id: label}."""
    truth: dict[int, np.ndarray] = {}
    for i in range(pool + val):
        image, label = generate_scene(seed + i, size)
        with_label = i < labeled or i >= pool
        result = add_image(
            session,
            project,
            f"scene_{i:03d}.png",
            png_bytes(image),
            split=ImageSplit.val if i >= pool else ImageSplit.pool,
            label_png=png_bytes(label) if with_label else None,
            author_id=None,
        )
        assert result.status == "stored", result
        assert result.image_id is not None
        truth[result.image_id] = label
    session.commit()
    return truth
