"""What a pseudo-label run would do, for the lead to confirm before starting it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PseudoLabelPlan(BaseModel):
    model_version_id: int
    method: str
    round_id: int | None
    labeled_count: int = Field(description="human-labelled images the model was trained on")
    val_miou: float | None = Field(description="the model's mIoU on the validation images; null when unknown")
    validation_images: int | None = Field(description="how many validation images that mIoU comes from")
    self_trained: bool = Field(
        description="the model is a self-trained student (a round with `self_training`): the model the benchmark "
        "recommends for labelling the rest"
    )
    teacher_miou: float | None = Field(
        description="a self-trained model's teacher (the round's trained model) on the same validation images; "
        "null when not self-trained or unknown"
    )
    threshold: float = Field(description="the project's default: pixels less sure than this become ignore")
    images: int = Field(description="images without a human label and without this model's mask: the run's targets")
    claimed: int = Field(description="of those, held by an annotator now: skipped by a run started now, left for later")
