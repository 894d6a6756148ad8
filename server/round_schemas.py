"""Request and response bodies of rounds, model versions, pseudo-label jobs, project ML settings and metrics."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ml.profiles import SELF_TRAINING_TEACHER  # plain dicts
from ml.selection import get_strategy, strategy_names  # numpy only; the scorers import torch when run
from server.errors import invalid_field
from server.job_schemas import JobPublic
from server.models import RoundStatus
from server.request_model import RequestModel
from server.schemas import MAX_INT, RowId, UTCDateTime
from server.settings import Settings

# A budget given as text: a count of 1 .. 999,999,999 images, or a percentage of the pool in (0, 100]. The
# OpenAPI document gives this pattern, and parse_budget reads text with it, so text that matches it is taken.
_COUNT = r"0*[1-9][0-9]{0,8}"
_PERCENT = r"0*100(?:\.0+)?|0*[1-9][0-9]?(?:\.[0-9]+)?|0*\.[0-9]*[1-9][0-9]*"
BUDGET_PATTERN = rf"^\s*(?:(?P<count>{_COUNT})|(?P<percent>{_PERCENT})\s*%)\s*$"
BUDGET_MAX_CHARS = 32
# A network encoder a round or its student may name (ml.network.ENCODERS, which imports torch).
Encoder = Literal["lite0", "lite2", "resnet50"]


def parse_budget(budget: int | str) -> tuple[int | None, float | None]:
    """(count, None) or (None, percent): "63" and 63 are counts, "3%" a percentage of the pool."""
    if isinstance(budget, str):
        match = re.fullmatch(BUDGET_PATTERN, budget) if len(budget) <= BUDGET_MAX_CHARS else None
        if match is None:
            shown = budget if len(budget) <= BUDGET_MAX_CHARS else budget[:BUDGET_MAX_CHARS] + "…"
            raise ValueError(
                f"budget {shown!r} is neither a count (63, at most 999999999 as text) nor a percentage of the pool "
                "in (0, 100] ('3%')"
            )
        if match.group("percent") is not None:
            return None, float(match.group("percent"))
        return int(match.group("count")), None
    if not 1 <= budget <= MAX_INT:
        raise ValueError(f"budget {budget} must be a count of 1 .. {MAX_INT} images")
    return budget, None


def _budget_parses(value: int | str) -> int | str:
    parse_budget(value)
    return value


Budget = Annotated[int | str, AfterValidator(_budget_parses)]


def budget_field(default: str) -> Any:
    return Field(
        default,
        description="images to label next: a count (21) or a percentage of the pool ('1%')",
        # What _budget_parses enforces, so that the document bounds it too.
        json_schema_extra={
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                {"type": "string", "maxLength": BUDGET_MAX_CHARS, "pattern": BUDGET_PATTERN},
            ]
        },
    )


# A query round's default batch: 0.5% of the pool, so that 1% → 3% takes four rounds. On the dev benchmark four
# rounds of 10-11 images beat two of 21 (bench/results/label_efficiency: st-ueq-4r against st-ueq).
ROUND_BUDGET_DEFAULT = "0.5%"
FIRST_SET_BUDGET_DEFAULT = "1%"  # the papers' start: 1% of the pool
FIRST_SET = "first-set"  # the `method` of a round that ranks the pool without a model (FirstSetCreate)


class SelfTrainingRequest(RequestModel):
    threshold: float = Field(0.9, ge=0.0, le=1.0, description="pseudo-label confidence below which a pixel is ignored")
    class_keep: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="per-class thresholds: a class the teacher is rarely sure of keeps at least this share of its "
        "most confident pixels (class-balanced self-training); null: the threshold alone",
    )
    steps: int | None = Field(None, ge=1, le=1_000_000, description="student steps; default: the profile's")
    teacher: Literal["round", "supervised", "ensemble"] | None = Field(
        None,
        description="who pseudo-labels the pool: `round` (the round's trained model), `supervised` (a model "
        "trained on the human labels alone with the profile's supervised schedule and the student's loss, as "
        "ST++ does) or `ensemble` (both, their probabilities averaged); default: the profile's "
        f"({', '.join(f'{k}: {v}' for k, v in SELF_TRAINING_TEACHER.items())})",
    )
    encoder: Encoder | None = Field(
        None,
        description="the student's network encoder (the teacher and the model that ranks the pool keep the "
        "round's); default: the round's `encoder`",
    )


class RoundCreate(RequestModel):
    method: Literal["supervised", "cps-mars", "s5mars"] = "cps-mars"
    strategy: str = Field(
        "ueq",
        max_length=64,
        description="random, entropy, least-confidence, margin, bald, ueq, or a UEQ variant: ueq-product, "
        "ueq+disagreement, ueq+rare-class (suffixes may be combined)",
        json_schema_extra={"enum": strategy_names()},  # what _strategy_known takes, listed in the document
    )
    budget: Budget = budget_field(ROUND_BUDGET_DEFAULT)
    profile: Literal["cpu", "paper"] = Field("cpu", description="schedule: `cpu` for 2 cores, `paper` for a GPU")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    steps: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="training steps; default: the profile's; at most the profile's cap "
        "(MARSLABEL_MAX_ROUND_STEPS_CPU, MARSLABEL_MAX_ROUND_STEPS_PAPER)",
    )
    crop_size: int | None = Field(
        None,
        ge=32,
        le=2048,
        description="training crop side; default: the profile's; at most the profile's cap "
        "(MARSLABEL_MAX_CROP_SIZE_CPU, MARSLABEL_MAX_CROP_SIZE_PAPER)",
    )
    encoder: Encoder | None = None
    score_batch_size: int = Field(8, ge=1, le=256)
    warm_start: bool | None = Field(
        None,
        description="start from the project's latest model of the same method; default: the profile's "
        "(cpu: yes, paper: no)",
    )
    self_training: SelfTrainingRequest | None = Field(
        None,
        description="make the round's model by self-training: the trained model pseudo-labels the pool and a "
        "student learns from the human labels plus those pseudo-labels (for the model that labels the rest)",
    )
    accepted_only: bool = Field(
        False, description="train only on labelled images whose current human label a reviewer accepted"
    )

    @field_validator("strategy")
    @classmethod
    def _strategy_known(cls, value: str) -> str:
        get_strategy(value)  # ValueError naming the known strategies
        return value


class FirstSetCreate(RequestModel):
    """A first set for a project without labels yet: pool images chosen to cover the pool, ranked, so that the
    queue serves them first (instead of import order) until a query round ranks the pool again."""

    method: Literal["kcenter", "kmeans", "random"] = Field(
        "kcenter",
        description="kcenter (the default): greedy k-centre over pretrained encoder features of the pool (the most "
        "different images; the best first set in the label-efficiency benchmark); kmeans: the image nearest each of "
        "`budget` k-means centroids of the same features (typical images of every kind of scene; the largest kind "
        "first); random: the papers' baseline",
    )
    budget: Budget = budget_field(FIRST_SET_BUDGET_DEFAULT)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="the first k-centre pick, k-means++ start or random draw")


def check_round_caps(body: RoundCreate, settings: Settings, loc: tuple[str, ...] = ("body",)) -> None:
    """A 422 naming each of `steps`, `crop_size` and `self_training.steps` over its profile's cap in the settings."""
    errors = []
    caps = settings.round_caps(body.profile)
    checked = [((field,), getattr(body, field), caps[field]) for field in caps]
    if body.self_training is not None and "steps" in caps:
        checked.append((("self_training", "steps"), body.self_training.steps, caps["steps"]))
    for where, value, (cap, variable) in checked:
        if value is not None and value > cap:
            message = f"{value} is more than the {body.profile} profile allows: at most {cap} ({variable})"
            errors.extend(invalid_field((*loc, *where), message, value).errors())
    if errors:
        raise RequestValidationError(errors)


class ModelVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    round_id: int | None
    method: str
    config: dict[str, Any]
    metrics: dict[str, Any] = Field(
        description="miou, per_class_iou, validation (its source and size), timings; a self-trained round adds "
        "pseudo_labels (its teacher and figures) and method_model (the method's own model, which the next round "
        "of that method warm-starts from)"
    )
    labeled_count: int
    artifact_sha256: str
    created_at: UTCDateTime


class RoundPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    index: int
    method: str = Field(description="the training method, or `first-set` for a first set (no model is trained)")
    strategy: str = Field(description="the query strategy; for a first set: kmeans, kcenter or random")
    budget: int = Field(description="images to label in this round, resolved to a count")
    status: RoundStatus
    params: dict[str, Any]
    trigger: str
    labeled_count: int
    job_id: int | None
    created_by: int | None
    created_at: UTCDateTime
    finished_at: UTCDateTime | None
    job: JobPublic | None = None
    model_version: ModelVersionPublic | None = None


class ScoreItem(BaseModel):
    image_id: int
    file_name: str
    rank: int
    score: float
    status: str = Field(description="the image's status now: unlabeled or labeled")
    model_confidence: float | None = Field(
        None, description="the model's mean confidence in its newest prediction (pseudo-label) of the image; null: none"
    )


class ScorePage(BaseModel):
    round_id: int
    total: int
    offset: int
    limit: int
    items: list[ScoreItem]


class PseudoLabelCreate(RequestModel):
    model_version_id: RowId | None = Field(None, description="default: the project's latest model version")
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="pixels less sure than this become ignore; default: the project's"
    )
    batch_size: int = Field(8, ge=1, le=256)


class ProjectMlSettings(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    auto_round_after: int | None = Field(
        None, ge=1, le=MAX_INT, description="start a round once this many images got a human label since the last one"
    )
    round_defaults: RoundCreate | None = Field(None, description="what an automatic round runs")
    pseudo_label_threshold: float = Field(0.0, ge=0.0, le=1.0)


class ProjectMlSettingsUpdate(RequestModel):
    """Fields left out stay as they are; null switches auto rounds off."""

    auto_round_after: int | None = Field(None, ge=1, le=MAX_INT)
    round_defaults: RoundCreate | None = None
    # Not nullable: a threshold is a number (0 keeps every pixel); leaving it out keeps the current one.
    pseudo_label_threshold: float = Field(None, ge=0.0, le=1.0)  # type: ignore[assignment]


class CurvePoint(BaseModel):
    round_id: int
    round_index: int
    model_version_id: int
    strategy: str
    method: str
    labeled_count: int
    miou: float | None
    per_class_iou: dict[str, float | None]
    validation: dict[str, Any]


class ProjectMetrics(BaseModel):
    project_id: int
    rounds: list[RoundPublic]
    curve: list[CurvePoint] = Field(description="mIoU against labelled images, one point per finished round")
