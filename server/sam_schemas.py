"""Request and response bodies of the SAM routes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from server.job_schemas import JobPublic
from server.request_model import RequestModel
from server.schemas import RowId


class SamPredictRequest(RequestModel):
    points: list[tuple[float, float]] = Field(default_factory=list, max_length=64, description="(x, y) in image pixels")
    labels: list[Annotated[int, Field(ge=0, le=1)]] = Field(
        default_factory=list, max_length=64, description="per point: 1 include, 0 exclude"
    )
    box: tuple[float, float, float, float] | None = Field(None, description="(x0, y0, x1, y1) in image pixels")
    mask_input: str | None = Field(
        None,
        max_length=200_000,
        description=(
            "previous low-res mask to refine: base64 of the 256×256 float16 little-endian logits that "
            "`?output=low_res` returned (the one binary input a JSON body carries; 128 KiB)"
        ),
    )
    model: str | None = Field(
        None, max_length=200, description="the model the client's prompt is meant for; checked when given"
    )


class SamPending(BaseModel):
    detail: str
    job: JobPublic


class SamAutoMasksCreate(RequestModel):
    image_ids: list[RowId] | None = Field(None, max_length=10_000, description="default: every labeled image")
    points_per_side: int = Field(16, ge=4, le=64)
