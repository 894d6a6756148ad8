"""The official Segment Anything backend: ViT-B/L/H checkpoints a user names, through the `segment_anything`
package (torch; meant for GPU workers). Same SamBackend interface and the same float16 embedding form as the
ONNX pair, so the cache, the routes and automatic masks do not care which one made an embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ml.sam.interface import INPUT_SIZE, Embedding, Prediction, Prompt, check_prompt


class SegmentAnythingSam:
    def __init__(self, checkpoint: Path, model_type: str = "vit_h", device: str | None = None) -> None:
        import torch
        from segment_anything import SamPredictor, sam_model_registry

        if model_type not in sam_model_registry:
            raise ValueError(f"unknown SAM model type {model_type!r}; one of {sorted(sam_model_registry)}")
        if not checkpoint.is_file():
            raise FileNotFoundError(f"SAM checkpoint {checkpoint} does not exist")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = sam_model_registry[model_type](checkpoint=str(checkpoint)).to(self.device).eval()
        self.predictor = SamPredictor(model)
        self.model_id = f"sam-{model_type}-{checkpoint.stem}"
        self._torch = torch

    def encode(self, image: np.ndarray) -> Embedding:
        with self._torch.inference_mode():
            self.predictor.set_image(image, image_format="RGB")
            features = self.predictor.get_image_embedding()
        height, width = image.shape[:2]
        return Embedding(
            self.model_id,
            features.float().cpu().numpy().astype(np.float16),
            (height, width),
            INPUT_SIZE / max(height, width),
        )

    def _load(self, embedding: Embedding) -> None:
        # SamPredictor keeps the last image's features; put the cached embedding in their place.
        height, width = embedding.original_size
        predictor: Any = self.predictor
        predictor.reset_image()
        predictor.features = self._torch.from_numpy(embedding.data.astype(np.float32)).to(self.device)
        predictor.original_size = (height, width)
        predictor.input_size = predictor.transform.get_preprocess_shape(height, width, INPUT_SIZE)
        predictor.is_image_set = True

    def decode(self, embedding: Embedding, prompt: Prompt, *, keep_logits: bool = False) -> Prediction:
        check_prompt(prompt, embedding.original_size)
        self._load(embedding)
        with self._torch.inference_mode():
            logits, scores, low_res = self.predictor.predict(
                point_coords=np.asarray(prompt.points, np.float32) if prompt.points else None,
                point_labels=np.asarray(prompt.labels, np.int64) if prompt.points else None,
                box=np.asarray(prompt.box, np.float32) if prompt.box is not None else None,
                mask_input=prompt.mask_input[None].astype(np.float32) if prompt.mask_input is not None else None,
                multimask_output=False,
                return_logits=True,
            )
        return Prediction(
            mask=logits[0] > 0.0,
            score=float(scores[0]),
            low_res_logits=low_res[0].astype(np.float32),
            logits=logits[0].astype(np.float32) if keep_logits else None,
        )
