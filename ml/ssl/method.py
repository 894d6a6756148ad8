"""What every training method provides to the shared loop in ml.ssl.engine."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ml.data import Batch, CandidateMasks
from ml.interfaces import TrainConfig
from ml.losses import supervised_loss
from ml.network import SegmentationNet

# Options every method understands (TrainConfig.options), with their defaults.
COMMON_OPTIONS: dict[str, Any] = {
    "optimizer": "adamw",  # adamw | sgd
    "momentum": 0.9,  # sgd only
    "poly_power": 0.9,
    "grad_clip": None,  # max gradient norm, None = no clipping
    "checkpoint_every": 100,  # steps between partial checkpoints
    "cache_images": True,  # keep decoded images in memory (up to 2 GiB per source)
    "dice_weight": 1.0,  # β of wce+dice
    "ohem_thresh": 0.7,
    "ohem_min_kept": None,  # None: 100k per 8·512² pixels, scaled to the batch (METHODS §7.2)
    "channels_last": None,  # None: on CUDA only
    "rare_crop": 0.0,  # share of labelled crops placed on the image's rarest class (ml.data.WeakAugDataset)
    # SSL methods: the first `burn_in` fraction of the steps trains on labelled images only (cheap, and
    # no pseudo-labels from an untrained model); the unsupervised weight then rises over the next
    # `unsup_rampup` fraction of the steps (sigmoid ramp-up, Laine & Aila 2017).
    "burn_in": 0.0,
    "unsup_rampup": 0.0,
}


@dataclass
class MethodContext:
    config: TrainConfig
    device: torch.device
    class_weights: torch.Tensor  # C, on the device
    options: dict[str, Any]  # defaults merged with config.options
    steps_per_epoch: int  # length of the epoch-driving stream, in steps


@dataclass
class StepBatch:
    """A training step's input: labelled batch and, for SSL methods with a pool, an unlabelled one.

    In `unlabeled`, `label` is the ground truth of pool images that are also labelled (255 elsewhere)
    and `valid` marks real (not padded) pixels.
    """

    labeled: Batch
    unlabeled: Batch | None


class Method(ABC):
    name: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}  # method-specific options and defaults
    uses_unlabeled: ClassVar[bool] = False
    # True: the pool batch carries the pool source's own labels (pseudo-labels; see ml.pseudo), not ground truth.
    pool_labels: ClassVar[bool] = False

    def __init__(self, ctx: MethodContext, pretrained: bool) -> None:
        self.ctx = ctx

    @abstractmethod
    def modules(self) -> dict[str, SegmentationNet]:
        """Every network whose state the checkpoint keeps."""

    @abstractmethod
    def trainable(self) -> list[SegmentationNet]:
        """The networks the optimiser updates."""

    @property
    @abstractmethod
    def predict_with(self) -> list[str]:
        """Names (keys of modules()) of the networks that predict, averaged."""

    @abstractmethod
    def loss(self, batch: StepBatch, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss of one step (to backpropagate) and its parts as floats, for the history."""

    def candidate_masks(self) -> CandidateMasks | None:
        """SAM-Mix object candidates for the labelled stream, for methods that paste objects."""
        return None

    def train_mode(self) -> None:
        for net in self.trainable():
            net.train()

    def after_step(self, step: int) -> None:
        """Called after each optimiser step (the EMA teacher update); nothing by default."""
        return None

    def uses_pool_at(self, step: int) -> bool:
        """Whether step `step` takes an unlabelled batch (False during the burn-in)."""
        return self.uses_unlabeled and step >= self.burn_in_steps

    @property
    def burn_in_steps(self) -> int:
        return round(float(self.ctx.options["burn_in"]) * self.ctx.config.steps)

    def unsup_ramp(self, step: int) -> float:
        """Multiplier of the unsupervised loss at `step`: exp(-5 (1 - t)²) during the ramp-up, then 1."""
        length = float(self.ctx.options["unsup_rampup"]) * self.ctx.config.steps
        if length <= 0:
            return 1.0
        t = min(1.0, max(0.0, (step - self.burn_in_steps + 1) / length))
        return math.exp(-5.0 * (1.0 - t) ** 2)

    def supervised(self, logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
        opts = self.ctx.options
        return supervised_loss(
            logits,
            target,
            kind,
            self.ctx.class_weights,
            dice_weight=float(opts["dice_weight"]),
            ohem_thresh=float(opts["ohem_thresh"]),
            ohem_kept=opts["ohem_min_kept"],
            ignore_index=self.ctx.config.ignore_index,
        )


def new_network(ctx: MethodContext, pretrained: bool) -> SegmentationNet:
    from ml.network import build_model

    cfg = ctx.config
    return build_model(cfg.encoder, cfg.num_classes, cfg.decoder_dropout, cfg.encoder_weights, pretrained)
