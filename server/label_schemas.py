"""Typed answers of the label routes for REST clients: the manifest, one label as COCO RLE, the choices."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, Field

from server.effort_schemas import BASE_AGREEMENT_DESCRIPTION, MaskEffort
from server.models import MaskSource, Split
from server.schemas import UTCDateTime


class LabelFormat(enum.StrEnum):
    png = "png"  # the stored class-index PNG
    color = "color"  # RGB PNG in the project's class colours, ignore = black
    rle = "rle"  # COCO RLE JSON, one entry per class present


class ExportFormat(enum.StrEnum):
    project = "project"
    s5mars = "s5mars"
    coco = "coco"


class LabelManifestItem(BaseModel):
    image_id: int
    file_name: str
    split: Split
    source: Literal["human", "model"] = Field(description="human (human or SAM-assisted mask) or model")
    mask_source: MaskSource = Field(description="The mask version's own source: human, sam or model")
    mask_version: int
    model_version_id: int | None = Field(None, description="The model that made it (model labels)")
    confidence: float | None = Field(None, description="Model labels: mean top-class probability")
    labeled_fraction: float = Field(description="Share of pixels that are not the ignore index")
    sha256: str = Field(description="sha256 of the class-index PNG; the png format's ETag is built from it")
    effort: MaskEffort | None = Field(
        None, description="human labels: the work the web app counted for this version's save; null when none"
    )
    base_agreement: float | None = Field(None, description=BASE_AGREEMENT_DESCRIPTION)
    created_at: UTCDateTime


class LabelManifestPage(BaseModel):
    items: list[LabelManifestItem]
    total: int
    limit: int
    offset: int


class RleClassMask(BaseModel):
    category_id: int = Field(description="COCO category id = class id + 1")
    class_id: int
    name: str
    counts: str = Field(description="COCO compressed RLE (column-major), as pycocotools writes it")
    size: tuple[int, int] = Field(description="[height, width]")
    area: int
    bbox: tuple[float, float, float, float] = Field(description="[x, y, width, height]")


class RleLabel(BaseModel):
    image_id: int
    file_name: str
    size: tuple[int, int] = Field(description="[height, width]")
    ignore_index: int = Field(description="Pixels of no entry: the ignore index (unlabeled)")
    source: Literal["human", "model"]
    mask_source: MaskSource
    mask_version: int
    model_version_id: int | None
    confidence: float | None
    sha256: str
    masks: list[RleClassMask]
