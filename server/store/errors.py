"""Errors the data-access layer raises; server/app.py turns them into 4xx JSON answers."""

from __future__ import annotations


class StoreError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, object] = {}  # more fields of the JSON answer, beside "detail"


class NotFound(StoreError):
    status_code = 404

    def __init__(self, what: str, ident: object, *, within: str = "") -> None:
        super().__init__(f"{what} {ident} not found" + (f" in {within}" if within else ""))


class Conflict(StoreError):
    status_code = 409


class InvalidInput(StoreError):
    status_code = 422


class TooLarge(StoreError):
    status_code = 413
