"""Every router create_app includes under /api/v1, one file per resource."""

from __future__ import annotations

from fastapi import APIRouter

from server.routers import imports, jobs, projects, users

ALL_ROUTERS: list[APIRouter] = [
    projects.router,
    users.router,
    jobs.router,
    imports.router,
]
