"""Every router create_app includes under /api/v1, one file per resource."""

from __future__ import annotations

from fastapi import APIRouter

from server.routers import (
    confidence,
    consensus,
    effort,
    images,
    imports,
    jobs,
    labels,
    masks,
    members,
    projects,
    queue,
    reviews,
    rounds,
    sam,
    team,
    users,
)

ALL_ROUTERS: list[APIRouter] = [
    projects.router,
    members.router,
    images.router,
    masks.router,
    confidence.router,
    queue.router,
    users.router,
    jobs.router,
    imports.router,
    sam.router,
    labels.router,
    rounds.router,
    effort.router,
    reviews.router,
    consensus.router,
    team.router,
]
