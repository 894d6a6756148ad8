"""Size limits on what is uploaded, taken from Settings so a task and a route apply the same ones."""

from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import Image as PILImage

from server.settings import PILLOW_MAX_PIXELS, Settings, get_settings


@dataclass(frozen=True)
class UploadLimits:
    max_upload_bytes: int
    max_image_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> UploadLimits:
        settings = settings or get_settings()
        return cls(max_upload_bytes=settings.max_upload_bytes, max_image_pixels=settings.max_image_pixels)

    def too_large(self, what: str) -> str:
        return f"{what} is larger than the limit of {self.max_upload_bytes} bytes (MARSLABEL_MAX_UPLOAD_BYTES)"

    def too_many_pixels(self, pixels: int | None, size: tuple[int, int] | None = None) -> str:
        """Why an image of `pixels` (width × height, when known: `size`) is refused, quoting the setting."""
        shown = "" if pixels is None else f"{size[0]}×{size[1]} = {pixels} pixels, " if size else f"{pixels} pixels, "
        if pixels is not None and pixels <= self.max_image_pixels:  # Pillow's own ceiling, below the setting
            return (
                f"refused as a decompression bomb: {shown}more than {PILLOW_MAX_PIXELS} pixels, the most the "
                f"server's image library opens (MARSLABEL_MAX_IMAGE_PIXELS cannot raise it)"
            )
        return (
            f"refused as a decompression bomb: {shown}more than the limit of {self.max_image_pixels} pixels "
            f"(MARSLABEL_MAX_IMAGE_PIXELS)"
        )

    def unreadable(self, error: Exception, what: str, formats: str) -> str:
        """Why Image.open refused `what`, in the user's terms: never Pillow's internals (a BytesIO repr, its own
        pixel limit)."""
        if isinstance(error, PILImage.DecompressionBombError):
            found = re.search(r"\((\d+) pixels\)", str(error))
            return f"{what} " + self.too_many_pixels(int(found.group(1)) if found else None)
        if isinstance(error, PILImage.UnidentifiedImageError):
            return f"{what} is not an image: expected {formats}, and its bytes are in no image format the server reads"
        return f"{what} is not a readable {formats} image ({error})"
