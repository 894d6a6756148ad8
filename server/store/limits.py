"""Size limits on what is uploaded, taken from Settings so a task and a route apply the same ones."""

from __future__ import annotations

from dataclasses import dataclass

from server.settings import Settings, get_settings


@dataclass(frozen=True)
class UploadLimits:
    max_upload_bytes: int
    max_image_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> UploadLimits:
        settings = settings or get_settings()
        return cls(max_upload_bytes=settings.max_upload_bytes, max_image_pixels=settings.max_image_pixels)
