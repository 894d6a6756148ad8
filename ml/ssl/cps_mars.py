"""CPS-Mars (METHODS §3.2, reconstructed): two branches with cross pseudo supervision on CutMix-ed
unlabelled images, and a class-imbalance supervised loss (ENet-weighted CE + Dice by default).

The CutMix partner of each unlabelled image is another image of the same batch (the batch rolled by
one), so one no-grad pass per branch yields the pseudo-labels of both mixing sources. Ground truth of
pool images that are also labelled overrides the pseudo-labels (METHODS §2.4).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ml.losses import cross_entropy
from ml.network import SegmentationNet, prepare_for_device, reinit_head
from ml.ssl.method import Method, MethodContext, StepBatch, new_network
from ml.ssl.strong_aug import boxes_to_mask, cutmix_boxes


class CpsMars(Method):
    name = "cps-mars"
    uses_unlabeled = True
    options: ClassVar[dict[str, Any]] = {
        "sup_loss": "wce+dice",  # ce | wce | wce+dice | ohem | wohem
        "cps_weight": 1.5,  # λ
        "cutmix": True,
        "cutmix_boxes": 3,
        "cutmix_area": (0.25, 0.5),
    }

    def __init__(self, ctx: MethodContext, pretrained: bool) -> None:
        super().__init__(ctx, pretrained)
        branches = []
        for k in range(2):
            net = new_network(ctx, pretrained)
            # Same ImageNet encoder, heads initialised differently so that the branches disagree.
            reinit_head(net, seed=ctx.config.seed * 1009 + k + 1)
            branches.append(prepare_for_device(net, ctx.device, ctx.options["channels_last"]))
        self.branches: list[SegmentationNet] = branches

    def modules(self) -> dict[str, SegmentationNet]:
        return {"branch1": self.branches[0], "branch2": self.branches[1]}

    def trainable(self) -> list[SegmentationNet]:
        return self.branches

    @property
    def predict_with(self) -> list[str]:
        return ["branch1", "branch2"]

    def _mixed_unlabeled(
        self, batch: StepBatch, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mixed images, target for branch 1 from branch 2, target for branch 2 from branch 1)."""
        assert batch.unlabeled is not None
        opts = self.ctx.options
        ignore = self.ctx.config.ignore_index
        u = batch.unlabeled
        b, _, h, w = u.image.shape
        partner = torch.roll(torch.arange(b, device=u.image.device), 1)
        if opts["cutmix"] and b > 1:
            boxes = cutmix_boxes(b, h, w, rng, int(opts["cutmix_boxes"]), tuple(opts["cutmix_area"]))
            box = boxes_to_mask(boxes, h, w).to(u.image.device)
        else:
            box = torch.zeros(b, h, w, dtype=torch.bool, device=u.image.device)

        def mix(t: torch.Tensor) -> torch.Tensor:
            m = box if t.dim() == 3 else box.unsqueeze(1)
            return torch.where(m, t[partner], t)

        with torch.no_grad():
            # Pseudo-labels in train mode, as CPS does (BatchNorm on batch statistics).
            probs = [net(u.image).float().softmax(dim=1) for net in self.branches]
            targets = [mix(p).argmax(dim=1) for p in probs]
            known = mix(u.label)
            real = mix(u.valid)
            for k in range(2):
                targets[k] = torch.where(known != ignore, known, targets[k])
                targets[k] = torch.where(real, targets[k], torch.full_like(targets[k], ignore))
        mixed = mix(u.image)
        return mixed, targets[1], targets[0]

    def loss(self, batch: StepBatch, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        kind = self.ctx.options["sup_loss"]
        x_l, y_l = batch.labeled.image, batch.labeled.label
        if batch.unlabeled is None:
            sup = sum(self.supervised(net(x_l), y_l, kind) for net in self.branches)
            return sup, {"sup": float(sup.detach())}
        mixed, target_for_1, target_for_2 = self._mixed_unlabeled(batch, rng)
        n_l = x_l.shape[0]
        inputs = torch.cat([x_l, mixed])
        logits = [net(inputs) for net in self.branches]
        sup = self.supervised(logits[0][:n_l], y_l, kind) + self.supervised(logits[1][:n_l], y_l, kind)
        # The consistency term stays unweighted CE, as in CPS.
        cps = cross_entropy(logits[0][n_l:], target_for_1) + cross_entropy(logits[1][n_l:], target_for_2)
        weight = float(self.ctx.options["cps_weight"]) * self.unsup_ramp(step)
        total = sup + weight * cps
        return total, {"sup": float(sup.detach()), "cps": float(cps.detach())}
