"""`marslabel demo`: a project of procedurally generated Mars-like scenes (ml.synthetic), some labeled."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.db import session_scope
from server.models import Image as ImageRow
from server.models import Project, ProjectRole, Role, Split, User
from server.store.images import add_image
from server.store.members import add_member as add_project_member
from server.store.members import member_role
from server.store.projects import create_project
from server.store.users import create_user, issue_token, user_for_token

DEMO_NAME = "demo"
# The S5Mars classes (METHODS.md §1.2); the synthetic scenes use the first six.
# Colours told apart on screen (every pair at least 30 apart in CIELAB, each at least 50 from a dark rock and
# from Mars soil, so that an overlay at half opacity stays readable): tests/unit/test_class_palette.py.
S5MARS_CLASSES = [
    {"id": 0, "name": "sky", "color": [86, 180, 233]},
    {"id": 1, "name": "ridge", "color": [204, 121, 167]},
    {"id": 2, "name": "soil", "color": [230, 159, 0]},
    {"id": 3, "name": "sand", "color": [240, 228, 66]},
    {"id": 4, "name": "bedrock", "color": [213, 60, 40]},
    {"id": 5, "name": "rock", "color": [0, 200, 160]},
    {"id": 6, "name": "rover", "color": [30, 60, 230]},
    {"id": 7, "name": "trace", "color": [170, 255, 90]},
    {"id": 8, "name": "hole", "color": [255, 60, 220]},
]


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _plan(index: int, scenes: int) -> tuple[Split, bool]:
    """Split and whether the scene comes with its label: a labeled val sixth, a third of the pool labeled."""
    if index < max(1, scenes // 6):
        return Split.val, True
    return Split.pool, index % 3 == 0


def make_demo(url: str, scenes: int = 24) -> str:
    """Create (or complete) the demo project; scenes depend only on their seed, so a re-run adds nothing."""
    from ml.synthetic import generate_scene  # numpy/scipy work, only when asked for

    with session_scope(url) as session:
        project = session.scalar(select(Project).where(Project.name == DEMO_NAME))
        created = project is None
        if project is None:
            project = create_project(
                session, DEMO_NAME, S5MARS_CLASSES, description="Synthetic Mars-like scenes (marslabel demo)"
            )
        present = session.scalar(select(func.count()).select_from(ImageRow).where(ImageRow.project_id == project.id))
        added = labeled = 0
        if (present or 0) < scenes:
            for index in range(scenes):
                image, label = generate_scene(seed=index, size=256)
                split, with_label = _plan(index, scenes)
                result = add_image(
                    session,
                    project,
                    f"scene_{index:03d}.png",
                    _png(image, "RGB"),
                    split=split,
                    label_png=_png(label, "L") if with_label else None,
                )
                if result.status == "stored":
                    added += 1
                    labeled += int(result.mask_version is not None)
        _add_demo_members(session, project)
        total = session.scalar(select(func.count()).select_from(ImageRow).where(ImageRow.project_id == project.id))
        project_id = project.id
    verb = "created" if created else "already there:"
    return f"demo project {verb} id {project_id}, {total} images ({added} added now, {labeled} of them with labels)"


DEMO_LEAD = "demo-lead"
DEMO_TOKEN_FILE = "demo-lead.token"
# The demo's accounts and their role in the demo project (only the lead gets a token printed by `serve`).
DEMO_MEMBERS = {DEMO_LEAD: ProjectRole.lead}


def _add_demo_members(session: Session, project: Project) -> None:
    for name, role in DEMO_MEMBERS.items():
        user = session.scalar(select(User).where(User.name == name))
        if user is not None and member_role(session, project.id, user.id) is None:
            add_project_member(session, project, user, role)


def demo_lead_token(url: str, data_dir: Path) -> str:
    """A token of the demo's lead account, so that `scripts/serve` can say how to sign in. The plain token is
    kept in `data_dir` (mode 600) because only its sha256 is in the database; a missing file gets a new token."""
    path = data_dir / DEMO_TOKEN_FILE
    with session_scope(url) as session:
        user = session.scalar(select(User).where(User.name == DEMO_LEAD))
        if user is not None and path.is_file():
            token = path.read_text().strip()
            if user_for_token(session, token) is not None:
                return token
        if user is None:
            user, token = create_user(session, DEMO_LEAD, Role.lead)
        else:
            token = issue_token(session, user)
        project = session.scalar(select(Project).where(Project.name == DEMO_NAME))
        if project is not None:
            _add_demo_members(session, project)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token
