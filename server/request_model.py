"""The base of every request body: unknown fields are refused, and so is a JSON value of a kind the field's type
does not take, where pydantic's lax mode would convert it.

Lax mode stores `"seed": true` as 1 (Python's bool is an int), `"seed": "7"` as 7 and `"warm_start": 0` as false,
where the OpenAPI document says `integer` or `boolean`: a fuzzer from the document rightly calls that accepting
invalid data. Strict mode is no answer: FastAPI validates the decoded body as Python objects, and strict mode
would also refuse an enum's string and a tuple's list. So the kinds are checked here, once, for every field of
every request model (a nested model checks its own fields); values and ranges stay pydantic's to check.
"""

from __future__ import annotations

import enum
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

ANY = None  # a type that takes every kind of value (free-form JSON)


def _kind(value: Any) -> str:
    """The JSON kind of a decoded value; a float without a fraction is also an integer, as JSON Schema says."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def _kinds(annotation: Any) -> set[str] | None:
    """The JSON kinds a field of this type takes, or ANY."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        kinds: set[str] = set()
        for arg in get_args(annotation):
            more = _kinds(arg)
            if more is ANY:
                return ANY
            kinds |= more
        return kinds
    if origin is Literal:
        return {_kind(value) for value in get_args(annotation)}
    if origin in (list, tuple, set, frozenset):
        return {"array"}
    if origin is dict or annotation is dict:
        return {"object"}
    if annotation is type(None):
        return {"null"}
    if annotation is bool:
        return {"boolean"}
    if annotation is int:
        return {"integer"}
    if annotation is float:
        return {"integer", "number"}
    if annotation is str:
        return {"string"}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {_kind(member.value) for member in annotation}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"object"}
    return ANY


def _items(annotation: Any, length: int) -> list[Any] | None:
    """The element types of an array of `length` items of this type (one per item), or None when unknown."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _items(get_args(annotation)[0], length)
    if origin in (Union, types.UnionType):
        arrays = [arg for arg in get_args(annotation) if (_kinds(arg) or set()) == {"array"}]
        return _items(arrays[0], length) if len(arrays) == 1 else None
    args = get_args(annotation)
    if origin in (list, set, frozenset) and args:
        return [args[0]] * length
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return [args[0]] * length
        return list(args) if len(args) == length else None  # a wrong length is pydantic's to name
    return None


def _wrong_kind(value: Any, annotation: Any, where: str) -> str | None:
    """Where and how `value` is of a kind `annotation` does not take, or None."""
    kinds = _kinds(annotation)
    kind = _kind(value)
    # Only what lax mode would convert (true → 1, "7" → 7, 0 → false); other mismatches pydantic refuses itself.
    converted = kind in ("boolean", "string") or (kind in ("integer", "number") and "boolean" in (kinds or ()))
    if kinds is not ANY and kind not in kinds and converted:
        wanted = " or ".join(sorted(kinds - {"integer"} if "number" in kinds else kinds))
        return f"{where}: {kind} where the field takes {wanted}"
    if kind == "array":
        types_ = _items(annotation, len(value))
        for index, (item, item_type) in enumerate(zip(value, types_ or [], strict=False)):
            problem = _wrong_kind(item, item_type, f"{where}.{index}")
            if problem:
                return problem
    return None  # an object is a nested model, which checks itself, or free-form JSON


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _of_the_documented_kind(cls, value: Any, info: ValidationInfo) -> Any:
        # A field validator, so that the 422 names the field (body.<field>), as pydantic's own errors do.
        assert info.field_name is not None
        problem = _wrong_kind(value, cls.model_fields[info.field_name].annotation, info.field_name)
        if problem:
            raise ValueError(problem)
        return value
