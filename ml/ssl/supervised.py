"""Fully supervised baseline: one network, labelled images only."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ml.network import prepare_for_device
from ml.ssl.method import Method, MethodContext, StepBatch, new_network


class Supervised(Method):
    name = "supervised"
    options: ClassVar[dict[str, Any]] = {"sup_loss": "ce"}  # ce | wce | wce+dice | ohem | wohem

    def __init__(self, ctx: MethodContext, pretrained: bool) -> None:
        super().__init__(ctx, pretrained)
        self.net = prepare_for_device(new_network(ctx, pretrained), ctx.device, ctx.options["channels_last"])

    def modules(self) -> dict[str, Any]:
        return {"model": self.net}

    def trainable(self) -> list[Any]:
        return [self.net]

    @property
    def predict_with(self) -> list[str]:
        return ["model"]

    def loss(self, batch: StepBatch, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.net(batch.labeled.image)
        loss = self.supervised(logits, batch.labeled.label, self.ctx.options["sup_loss"])
        return loss, {"sup": float(loss.detach())}
