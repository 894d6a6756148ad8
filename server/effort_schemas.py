"""Annotation effort: what the web app counts while a person labels an image (active seconds, actions by kind),
sent with each human save and stored with the mask version; and the dashboard's effort per round.

A field the client left out stays null ("not measured"), never 0: an API client that sends no effort, or an older
web app that counts fewer kinds, must not look like work that cost nothing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from server.request_model import RequestModel

MAX_EFFORT_SECONDS = 86_400  # a day: one save's active time beyond this is a broken clock, not work
MAX_EFFORT_COUNT = 100_000  # actions of one kind in one save
MAX_EFFORT_JSON_CHARS = 4_000

Count = Annotated[int | None, Field(ge=0, le=MAX_EFFORT_COUNT, strict=True)]

# The counted kinds, in the order the dashboard sums them into "actions".
ACTION_FIELDS = (
    "sam_positive_clicks",
    "sam_negative_clicks",
    "sam_boxes",
    "sam_commits",
    "brush_strokes",
    "eraser_strokes",
    "fills",
    "polygons",
    "undos",
    "redos",
)


class MaskEffort(RequestModel):
    """The work one human save cost, as the web app counted it since the image was opened or last saved."""

    active_seconds: float | None = Field(
        None,
        ge=0,
        le=MAX_EFFORT_SECONDS,
        allow_inf_nan=False,
        strict=True,
        description="seconds the image was open with the page visible and focused, counting only time with input "
        "(pointer, key, wheel) in the last 30 s: an idle gap longer than 30 s counts as 30 s",
    )
    sam_positive_clicks: Count = Field(None, description="SAM include clicks")
    sam_negative_clicks: Count = Field(None, description="SAM exclude clicks")
    sam_boxes: Count = Field(None, description="SAM box prompts")
    sam_commits: Count = Field(None, description="SAM previews committed to a class (Enter)")
    brush_strokes: Count = Field(None, description="brush strokes (press to release)")
    eraser_strokes: Count = Field(None, description="eraser strokes")
    fills: Count = Field(None, description="flood fills")
    polygons: Count = Field(None, description="polygons closed and filled")
    undos: Count = Field(None, description="undo steps taken")
    redos: Count = Field(None, description="redo steps taken")

    def actions(self) -> int | None:
        """Every counted action, summed over the kinds given; null when no kind was given."""
        given = [getattr(self, name) for name in ACTION_FIELDS if getattr(self, name) is not None]
        return sum(given) if given else None


EFFORT_FORM_DESCRIPTION = (
    "Optional: the work this save cost, a JSON object (schema MaskEffort): `active_seconds` (0..86400) and counts "
    f"(integers 0..{MAX_EFFORT_COUNT}) of {', '.join(ACTION_FIELDS)}. Kinds left out are stored as null (not "
    "measured), never 0; an unknown key, a negative or larger value is a 422 naming the field (body.effort.<name>)."
)


def parse_effort(text: str | None) -> dict[str, Any] | None:
    """The `effort` form field: None when absent or empty, else the given fields (null ones dropped), validated.
    RequestValidationError (a 422 naming body.effort.<field>) otherwise."""
    if text is None or not text.strip():
        return None
    try:
        effort = MaskEffort.model_validate_json(text)
    except ValidationError as error:
        errors = []
        for item in error.errors(include_url=False):
            if item.get("type") == "json_invalid":  # a bad form field, not a malformed request body: a 422
                item = {**item, "type": "value_error", "msg": f"not valid JSON: {item.get('msg')}"}
            errors.append({**item, "loc": ("body", "effort", *item.get("loc", ()))})
        raise RequestValidationError(errors) from error
    given = effort.model_dump(exclude_none=True)
    return given or None


def effort_public(stored: dict[str, Any] | None) -> MaskEffort | None:
    """A stored effort as the API answers it: every field, null where not measured; null when none was sent."""
    return None if stored is None else MaskEffort.model_validate(stored)


def effort_json(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """The same for files written by exports (every field, null where not measured)."""
    public = effort_public(stored)
    return None if public is None else json.loads(public.model_dump_json())


BASE_AGREEMENT_DESCRIPTION = (
    "Agreement of this version with the version it was saved on top of (`parent_version`): the share of the pixels "
    "labelled (not the ignore index) in either mask that have the same value in both; a pixel labelled in one and "
    "unlabelled in the other disagrees. 1.0 = saved unchanged (or both empty), so 1 − agreement is how much of a "
    "pseudo-label had to be corrected. Null when there was no base version."
)


class EffortFigures(BaseModel):
    images: int = Field(description="labelling sessions counted: (image, annotator) pairs with recorded effort")
    median_active_seconds: float | None = Field(description="median active seconds per image; null: none measured")
    median_actions: float | None = Field(description="median counted actions per image; null: none measured")
    median_base_agreement: float | None = Field(
        None, description="median agreement of the first save with the version it started from (null: no base)"
    )


class EffortRound(BaseModel):
    after_round: int = Field(
        description="labels saved after this round finished (0: before any round finished: the seed labels)"
    )
    labeled_count: int | None = Field(
        None, description="the round's labelled count (the x of its point on the label-efficiency curve)"
    )
    from_pseudo_label: EffortFigures = Field(description="the image's first save was on top of a model version")
    from_scratch: EffortFigures = Field(
        description="no version before it (or a blind consensus second label, made without seeing the first)"
    )
    from_human_label: EffortFigures = Field(description="corrections of another human label (e.g. by a reviewer)")


class ProjectEffort(BaseModel):
    project_id: int
    rounds: list[EffortRound] = Field(description="one row per round after which effort was recorded, in order")
