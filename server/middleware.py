"""Pure ASGI middleware: a request body size limit, and the cross-origin isolation headers."""

from __future__ import annotations

import json
from typing import ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _json_error(status: int, detail: str) -> tuple[Message, Message]:
    body = json.dumps({"detail": detail, "errors": []}).encode()  # server.errors.ErrorBody
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


class BodySizeLimitMiddleware:
    """413 for a body over `max_bytes`: at once from Content-Length, else as soon as the stream passes it.

    A body that outgrows the limit mid-stream makes the app fail in whatever way it fails (FastAPI turns a
    broken form into 400); whatever it answers then is replaced by the 413, so the client learns the cause.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes (MARSLABEL_MAX_REQUEST_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    for message in _json_error(413, self._too_large()):
                        await send(message)
                    return
        received = 0
        exceeded = False
        response_started = False

        class _BodyTooLarge(Exception):
            pass

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    for error_message in _json_error(413, self._too_large()):
                        await send(error_message)
                return  # drop the app's own answer to the cut-off body
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not response_started:
            for message in _json_error(413, self._too_large()):
                await send(message)


class CrossOriginIsolationMiddleware:
    """COOP/COEP on every answer: the browser's SAM decoder (onnxruntime-web threads) needs SharedArrayBuffer.
    CORP same-origin says our own scripts, wasm and models may be loaded by our (isolated) pages only."""

    HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-embedder-policy", b"require-corp"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)
