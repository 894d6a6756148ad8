"""Self-training (ST++-style, METHODS §5 reconstruction): a student learns from the human labels and from a
teacher's confidence-sparsified pseudo-labels of the pool, given to it as a ml.pseudo.PseudoLabelSource.

Each step takes a labelled batch and a pseudo-labelled pool batch. The pool batch is strongly perturbed by
CutMix inside the batch (images and their pseudo-labels mixed with the same boxes), the perturbation that makes
a student more than a copy of its teacher, and with option `photometric` first by ST++'s contrast, brightness
and blur (ml.ssl.strong_aug.photometric). Pixels the teacher was unsure of carry 255 and add nothing. With option
`rare_paste`, that share of the mixed pool images then receives the rarest class's human-labelled pixels from the
step's labelled batch (ml.ssl.strong_aug.paste_rare_class).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ml.ssl.method import StepBatch
from ml.ssl.strong_aug import boxes_to_mask, cutmix_boxes, paste_rare_class, photometric
from ml.ssl.supervised import Supervised


class SelfTraining(Supervised):
    """Supervised's one network, with a pseudo-labelled pool batch beside the labelled one."""

    name = "self-training"
    uses_unlabeled = True
    pool_labels = True
    options: ClassVar[dict[str, Any]] = {
        "sup_loss": "wce+dice",  # on human labels
        "pseudo_loss": "wce+dice",  # on pseudo-labels
        "pseudo_weight": 1.0,
        "cutmix": True,
        "photometric": False,
        "cutmix_boxes": 3,
        "cutmix_area": (0.25, 0.5),
        "rare_paste": 0.0,
    }

    def _mixed_pool(self, batch: StepBatch, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        assert batch.unlabeled is not None
        u, opts, ignore = batch.unlabeled, self.ctx.options, self.ctx.config.ignore_index
        target = torch.where(u.valid, u.label, torch.full_like(u.label, ignore))
        image = photometric(u.image, rng) if opts["photometric"] else u.image
        b, _, h, w = image.shape
        if opts["cutmix"] and b >= 2:
            boxes = cutmix_boxes(b, h, w, rng, int(opts["cutmix_boxes"]), tuple(opts["cutmix_area"]))
            box = boxes_to_mask(boxes, h, w).to(image.device)
            partner = torch.roll(torch.arange(b, device=image.device), 1)
            image = torch.where(box.unsqueeze(1), image[partner], image)
            target = torch.where(box, target[partner], target)
        lab = batch.labeled
        return paste_rare_class(
            image, target, lab.image, lab.label, self.ctx.class_weights, float(opts["rare_paste"]), rng
        )

    def loss(self, batch: StepBatch, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        opts = self.ctx.options
        lab = batch.labeled
        if batch.unlabeled is None:
            sup = self.supervised(self.net(lab.image), lab.label, opts["sup_loss"])
            return sup, {"sup": float(sup.detach())}
        image_u, target_u = self._mixed_pool(batch, rng)
        n_l = lab.image.shape[0]
        logits = self.net(torch.cat([lab.image, image_u]))
        sup = self.supervised(logits[:n_l], lab.label, opts["sup_loss"])
        pseudo = self.supervised(logits[n_l:], target_u, opts["pseudo_loss"])
        total = sup + float(opts["pseudo_weight"]) * self.unsup_ramp(step) * pseudo
        return total, {"sup": float(sup.detach()), "pseudo": float(pseudo.detach())}
