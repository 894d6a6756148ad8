"""What counts as a control character in text a client sends: C0 (U+0000..U+001F, NUL among them, which
PostgreSQL text cannot hold) and DEL. Names refuse them (server.schemas); upload file names drop them."""

from __future__ import annotations


def is_control(ch: str) -> bool:
    return ch < " " or ch == "\x7f"


def without_control(text: str) -> str:
    return "".join(ch for ch in text if not is_control(ch))
