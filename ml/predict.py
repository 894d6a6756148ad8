"""Prediction with trained networks: the Predictor protocol of ml.interfaces over one or more branches.

Images of any size go through whole: they are padded (bottom/right, with the network's mean colour)
to a multiple of 16, the network's output stride, and the probabilities are cropped back. With `flip`, each
network also sees the image mirrored left–right and its two probability maps are averaged (test-time
augmentation: a rover scene mirrored is still a rover scene, as in training's random flips). Several checkpoints
make one predictor (an ensemble teacher): each checkpoint weighs the same, whatever its number of branches.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml.network import SegmentationNet, autocast_context, build_model, prepare_for_device, resolve_device

STRIDE = 16


def inference_channels_last(device: torch.device) -> bool:
    """Whether prediction runs in channels-last by default: on CUDA (cuDNN) and on CPU, where oneDNN ran the
    Lite0 DeepLabV3+ forward faster in it (bench/predict_speed.py). Training on CPU stays NCHW (ml.network
    .prepare_for_device): the backward of its dilated depthwise convolutions is slower in channels-last."""
    return device.type in ("cuda", "cpu")


def _is_channels_last(model: nn.Module) -> bool:
    return all(p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.dim() == 4)


def _in_channels_last(model: SegmentationNet) -> SegmentationNet:
    """`model` itself where its weights are channels-last already, else a channels-last copy, so that a training
    network validated mid-run keeps its own layout."""
    if _is_channels_last(model):
        return model
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


class ModelPredictor:
    """Softmax probabilities from one or more networks (mean over branches for the main output)."""

    def __init__(
        self,
        models: Sequence[SegmentationNet],
        num_classes: int,
        device: torch.device,
        batch_size: int = 8,
        amp: bool = True,
        channels_last: bool | None = None,
        flip: bool = False,
        weights: Sequence[float] | None = None,
    ) -> None:
        if not models:
            raise ValueError("a predictor needs at least one network")
        if weights is not None and (len(weights) != len(models) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError(f"{len(models)} networks need as many non-negative weights, got {list(weights)}")
        self.channels_last = inference_channels_last(device) if channels_last is None else channels_last
        self.models = [_in_channels_last(m) for m in models] if self.channels_last else list(models)
        # None: the plain mean over the networks (one checkpoint's branches)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float32) / float(sum(weights))
        self.num_classes = num_classes
        self.device = device
        self.batch_size = batch_size
        self.amp = amp
        self.flip = flip

    def _batches(self, images: np.ndarray) -> list[tuple[torch.Tensor, int, int]]:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected N×H×W×3 uint8 images, got shape {images.shape}")
        n, h, w, _ = images.shape
        ph, pw = -h % STRIDE, -w % STRIDE
        pad = torch.tensor(self.models[0].pad_value, dtype=torch.float32).view(1, 3, 1, 1)
        out = []
        for start in range(0, n, self.batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + self.batch_size]))
            x = chunk.permute(0, 3, 1, 2).float()
            if ph or pw:
                padded = pad.expand(x.shape[0], 3, h + ph, w + pw).clone()
                padded[:, :, :h, :w] = x
                x = padded
            x = x.to(self.device)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out.append((x, h, w))
        return out

    def _run(self, model: nn.Module, x: torch.Tensor, h: int, w: int) -> np.ndarray:
        with autocast_context(self.device, self.amp):
            probs = model(x).float().softmax(dim=1)
            if self.flip:
                # Mirror the real columns only: the padding stays on the right, where it was in training.
                mirrored = x.clone()
                mirrored[..., :w] = x[..., :w].flip(-1)
                back = model(mirrored).float().softmax(dim=1)
                probs[..., :w] = (probs[..., :w] + back[..., :w].flip(-1)) / 2
        return probs[:, :, :h, :w].cpu().numpy()

    @torch.inference_mode()
    def branch_probas(self, images: np.ndarray) -> list[np.ndarray]:
        for model in self.models:
            model.eval()
        batches = self._batches(images)
        return [np.concatenate([self._run(m, x, h, w) for x, h, w in batches]) for m in self.models]

    def _combine(self, branches: Sequence[np.ndarray]) -> np.ndarray:
        if len(branches) == 1:
            return branches[0]
        if self.weights is None:
            return np.mean(branches, axis=0).astype(np.float32)
        return np.tensordot(self.weights, np.stack(branches), axes=1).astype(np.float32)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self._combine(self.branch_probas(images))

    @torch.inference_mode()
    def predict_proba_mc(self, images: np.ndarray, passes: int) -> np.ndarray:
        """T stochastic passes with every dropout layer active and BatchNorm in eval mode."""
        batches = self._batches(images)
        for model in self.models:
            model.eval()
            for layer in model.modules():
                if isinstance(layer, nn.Dropout | nn.Dropout2d):
                    layer.train()
        try:
            runs = []
            for _ in range(passes):
                per_branch = [np.concatenate([self._run(m, x, h, w) for x, h, w in batches]) for m in self.models]
                runs.append(self._combine(per_branch))
            return np.stack(runs).astype(np.float32)
        finally:
            for model in self.models:
                model.eval()


def predict_labels(predictor: ModelPredictor, images: np.ndarray) -> np.ndarray:
    """N×H×W uint8 argmax class ids."""
    return predictor.predict_proba(images).argmax(axis=1).astype(np.uint8)


def load_predictor(
    checkpoint: Path | Sequence[Path], device: str = "auto", batch_size: int = 8, *, flip: bool = False
) -> ModelPredictor:
    """A predictor from a training checkpoint (ml.ssl.train), using the networks its method predicts with; from
    several checkpoints, their probabilities averaged with the same weight each."""
    from ml import checkpoint as checkpoints

    paths = [Path(checkpoint)] if isinstance(checkpoint, str | Path) else [Path(c) for c in checkpoint]
    if not paths:
        raise ValueError("a predictor needs at least one checkpoint")
    target = resolve_device(device)
    models: list[SegmentationNet] = []
    weights: list[float] = []
    configs = []
    for path in paths:
        state = checkpoints.load(path)
        config = state["config"]
        configs.append(config)
        for name in state["predict_with"]:
            net = build_model(
                config["encoder"], config["num_classes"], bool(config["decoder_dropout"]), pretrained=False
            )
            net.load_state_dict(state["modules"][name])
            models.append(prepare_for_device(net, target, inference_channels_last(target)).eval())
            weights.append(1.0 / len(state["predict_with"]))
    if len({int(c["num_classes"]) for c in configs}) > 1:
        raise ValueError(f"checkpoints of different class counts cannot be averaged: {[str(p) for p in paths]}")
    if len({tuple(m.pad_value) for m in models}) > 1:
        raise ValueError(f"checkpoints of different input normalisations cannot be averaged: {[str(p) for p in paths]}")
    amp = all(bool(c.get("amp", True)) for c in configs)
    return ModelPredictor(
        models,
        int(configs[0]["num_classes"]),
        target,
        batch_size,
        amp,
        flip=flip,
        weights=weights if len(paths) > 1 else None,
    )
