"""What every SAM backend offers: encode an image once, decode many prompts against its embedding.

The ONNX pair (encoder.py, decoder.py) and the official `segment_anything` backend (official.py) both fit
`SamBackend`; routes, worker tasks and automatic masks only see this interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

EMBEDDING_SHAPE = (1, 256, 64, 64)
LOW_RES_SIZE = 256
INPUT_SIZE = 1024


class PromptError(ValueError):
    """A prompt that cannot be decoded (empty, outside the image, malformed); the message names why."""


@dataclass(frozen=True)
class Embedding:
    """A float16 image embedding and the geometry needed to map prompts onto it."""

    model: str
    data: np.ndarray  # float16, EMBEDDING_SHAPE for the ONNX pair (256×64×64 for every SAM variant)
    original_size: tuple[int, int]  # (height, width) of the source image
    scale: float  # input pixels per source pixel: INPUT_SIZE / max(height, width)


@dataclass(frozen=True)
class Prompt:
    """Points in source-image pixels (x, y) with labels 1 = include, 0 = exclude; an optional box
    (x0, y0, x1, y1); an optional previous low-res mask (256×256 logits) to refine."""

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    mask_input: np.ndarray | None = None


@dataclass(frozen=True)
class Prediction:
    mask: np.ndarray  # bool, original size
    score: float  # the decoder's predicted IoU
    low_res_logits: np.ndarray  # float32 256×256, feed back as Prompt.mask_input
    logits: np.ndarray | None = None  # float32 at original size, when the caller asked (automatic masks)


class SamBackend(Protocol):
    model_id: str

    def encode(self, image: np.ndarray) -> Embedding:
        """H×W×3 uint8 RGB → the embedding."""
        ...

    def decode(self, embedding: Embedding, prompt: Prompt, *, keep_logits: bool = False) -> Prediction:
        """One mask for the prompt; PromptError for a prompt it cannot use."""
        ...


def check_prompt(prompt: Prompt, original_size: tuple[int, int]) -> None:
    """Raise PromptError naming the problem: no prompt, mismatched labels, points or box outside the image."""
    height, width = original_size
    if not prompt.points and prompt.box is None:
        raise PromptError("empty prompt: give at least one point or a box")
    if len(prompt.points) != len(prompt.labels):
        raise PromptError(f"{len(prompt.points)} points but {len(prompt.labels)} labels")
    for index, label in enumerate(prompt.labels):
        if label not in (0, 1):
            raise PromptError(f"point {index} has label {label}; use 1 (include) or 0 (exclude)")
    for index, (x, y) in enumerate(prompt.points):
        if not (0 <= x <= width and 0 <= y <= height):
            raise PromptError(f"point {index} ({x}, {y}) is outside the {width}×{height} image")
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise PromptError(f"box {prompt.box} is not a box inside the {width}×{height} image (x0<x1, y0<y1)")
    if prompt.mask_input is not None and prompt.mask_input.shape != (LOW_RES_SIZE, LOW_RES_SIZE):
        raise PromptError(f"mask_input must be {LOW_RES_SIZE}×{LOW_RES_SIZE}, got {prompt.mask_input.shape}")


def prompt_arrays(prompt: Prompt, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """SAM's ONNX prompt encoding: points then box corners (labels 2, 3) in input coordinates; without a box
    a padding point (0, 0) labelled −1, as the exported decoder expects."""
    coords = [(x * scale, y * scale) for x, y in prompt.points]
    labels = [float(label) for label in prompt.labels]
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        coords += [(x0 * scale, y0 * scale), (x1 * scale, y1 * scale)]
        labels += [2.0, 3.0]
    else:
        coords.append((0.0, 0.0))
        labels.append(-1.0)
    return np.asarray(coords, np.float32)[None], np.asarray(labels, np.float32)[None]


def resize_longest(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, float]:
    """Scale so the long side is `size` (bilinear, as the package's JS does); returns the image and scale."""
    from PIL import Image

    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = round(width * scale), round(height * scale)
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
    return resized, scale
