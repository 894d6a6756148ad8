"""Request and response bodies of the jobs and imports routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.models import JobStatus, Split
from server.request_model import RequestModel
from server.schemas import Name, UTCDateTime


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int | None
    kind: str
    status: JobStatus
    progress: float = Field(description="0..1")
    message: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    attempts: int
    worker: str | None
    created_by: int | None
    created_at: UTCDateTime
    started_at: UTCDateTime | None
    heartbeat_at: UTCDateTime | None
    finished_at: UTCDateTime | None


class ImportCreate(RequestModel):
    path: Name = Field(max_length=1000, description="a folder relative to MARSLABEL_IMPORT_ROOT")
    layout: Literal["auto", "project", "s5mars", "plain"] = "auto"
    split: Split | None = Field(None, description="split for images the folder does not assign one (default pool)")
