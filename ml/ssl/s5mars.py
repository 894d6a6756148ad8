"""S5Mars teacher–student SSL (METHODS §2): EMA teacher, AugIN-σ, SAM-Mix + CutMix, OHEM supervision,
and soft-to-hard consistency. The teacher is the network that predicts and is evaluated.

The original's "epoch 0" in which the teacher mirrors the student is `ema_warmup_steps` here; by
default one epoch of the unlabelled stream, capped at a tenth of the run, because a labelling round
trains for far fewer steps than the paper's 240 epochs.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch

from ml.data import CandidateMasks
from ml.losses import hard_consistency, soft_consistency
from ml.network import SegmentationNet, prepare_for_device
from ml.ssl.method import Method, MethodContext, StepBatch, new_network
from ml.ssl.strong_aug import LabelComponentMasks, MixTargets, augin, sam_mix


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, decay: float) -> None:
    """θ_t ← d·θ_t + (1 − d)·θ_s over parameters and buffers (BN running statistics included);
    integer buffers (BN batch counters) are copied."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1 - decay)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        if t.dtype.is_floating_point:
            t.mul_(decay).add_(s, alpha=1 - decay)
        else:
            t.copy_(s)


def ema_decay(step: int, warmup_steps: int, max_decay: float = 0.996) -> float:
    """0 during warm-up (the teacher mirrors the student), then min(1 − 1/(i + 1), max_decay)."""
    if step < warmup_steps:
        return 0.0
    return min(1.0 - 1.0 / (step + 1), max_decay)


class S5Mars(Method):
    name = "s5mars"
    uses_unlabeled = True
    options: ClassVar[dict[str, Any]] = {
        "sup_loss": "ohem",  # ce | wce | wce+dice | ohem | wohem
        "ema_decay": 0.996,
        "ema_warmup_steps": None,  # None: one unlabelled epoch, at most steps / 10
        "augin": True,
        "augin_type": 1,  # 0 mean, 1 std (AugIN-σ), 2 both
        "sam_mix": True,  # paste label-component objects from labelled images, then a CutMix box
        "cutmix": True,  # the CutMix box alone when sam_mix is off
        "sam_min_paste_area": None,  # None: 100 px per 512² crop, scaled to the crop
        "mix_beta": 4.0,
        "hard_weight": 2.0,
        "soft_weight": 1.0,
        "soft_threshold": 0.9,
        "hard_on": "all",  # all (the released code) | conf>=0.9 (literal "soft-to-hard")
        "grad_clip": 8.0,
        # A warm-started run continues the loaded teacher at the full decay instead of restarting the EMA
        # schedule, which would copy the student (just restarted at the full learning rate) into the teacher.
        "ema_continue": False,
    }

    def __init__(self, ctx: MethodContext, pretrained: bool) -> None:
        super().__init__(ctx, pretrained)
        device, channels_last = ctx.device, ctx.options["channels_last"]
        self.student = prepare_for_device(new_network(ctx, pretrained), device, channels_last)
        self.teacher = copy.deepcopy(self.student)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self._masks = LabelComponentMasks()
        warmup = ctx.options["ema_warmup_steps"]
        self.warmup_steps = (
            int(warmup) if warmup is not None else min(ctx.steps_per_epoch, max(1, ctx.config.steps // 10))
        )
        if ctx.options["hard_on"] not in ("all", "conf>=0.9"):
            raise ValueError("option hard_on must be 'all' or 'conf>=0.9'")

    def modules(self) -> dict[str, SegmentationNet]:
        return {"student": self.student, "teacher": self.teacher}

    def trainable(self) -> list[SegmentationNet]:
        return [self.student]

    @property
    def predict_with(self) -> list[str]:
        return ["teacher"]

    def candidate_masks(self) -> CandidateMasks | None:
        return self._masks if self.ctx.options["sam_mix"] else None

    def train_mode(self) -> None:
        self.student.train()
        self.teacher.eval()

    def after_step(self, step: int) -> None:
        max_decay = float(self.ctx.options["ema_decay"])
        decay = max_decay if self.ctx.options["ema_continue"] else ema_decay(step, self.warmup_steps, max_decay)
        ema_update(self.teacher, self.student, decay)

    def _teacher_targets(self, image: torch.Tensor, known: torch.Tensor, keep: torch.Tensor) -> MixTargets:
        """Teacher soft maps and hard pseudo-labels; ground truth overrides them (conf 1), and pixels
        outside `keep` (padding, outside an object) get no target."""
        ignore = self.ctx.config.ignore_index
        with torch.no_grad():
            probs = self.teacher(image).float().softmax(dim=1)
            conf, pseudo = probs.max(dim=1)
            has_gt = known != ignore
            pseudo = torch.where(has_gt, known, pseudo)
            conf = torch.where(has_gt, torch.ones_like(conf), conf)
            pseudo = torch.where(keep, pseudo, torch.full_like(pseudo, ignore))
            # No soft target either where there is no target (conf 1 is above the soft threshold).
            conf = torch.where(keep, conf, torch.ones_like(conf))
        return MixTargets(image, pseudo, conf, probs)

    def loss(self, batch: StepBatch, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        opts = self.ctx.options
        ignore = self.ctx.config.ignore_index
        lab = batch.labeled
        if batch.unlabeled is None:
            sup = self.supervised(self.student(lab.image), lab.label, opts["sup_loss"])
            return sup, {"sup": float(sup.detach())}
        u = batch.unlabeled
        targets_u = self._teacher_targets(u.image, u.label, u.valid)
        strong = augin(u.image, int(opts["augin_type"]))[0] if opts["augin"] else u.image
        targets_u = MixTargets(strong, targets_u.pseudo, targets_u.conf, targets_u.probs)

        if opts["sam_mix"] and lab.mask is not None:
            # The object image is the labelled weak view, flipped together with its label and mask.
            flip = torch.from_numpy(rng.random(lab.image.shape[0]) < 0.5).to(lab.image.device)

            def maybe_flip(t: torch.Tensor) -> torch.Tensor:
                shape = (-1,) + (1,) * (t.dim() - 1)
                return torch.where(flip.view(shape), t.flip(-1), t)

            obj, obj_mask = maybe_flip(lab.image), maybe_flip(lab.mask)
            obj_label = torch.where(obj_mask, maybe_flip(lab.label), torch.full_like(lab.label, ignore))
            targets_o = self._teacher_targets(obj, obj_label, obj_mask & maybe_flip(lab.valid))
            crop = u.image.shape[-1]
            min_area = opts["sam_min_paste_area"]
            min_area = int(min_area) if min_area is not None else max(1, round(100 * crop * crop / 512**2))
            targets_u = sam_mix(targets_u, targets_o, obj_mask, rng, min_area, float(opts["mix_beta"]))
        elif opts["cutmix"]:
            no_objects = torch.zeros_like(targets_u.pseudo, dtype=torch.bool)
            targets_u = sam_mix(targets_u, targets_u, no_objects, rng, 1, float(opts["mix_beta"]))

        n_l = lab.image.shape[0]
        logits = self.student(torch.cat([lab.image, targets_u.image]))
        z_l, z_u = logits[:n_l], logits[n_l:]
        sup = self.supervised(z_l, lab.label, opts["sup_loss"])
        pseudo = targets_u.pseudo
        if opts["hard_on"] == "conf>=0.9":
            pseudo = torch.where(
                targets_u.conf >= float(opts["soft_threshold"]), pseudo, torch.full_like(pseudo, ignore)
            )
        hard = hard_consistency(z_u, pseudo, ignore)
        soft = soft_consistency(z_u, targets_u.probs, targets_u.conf < float(opts["soft_threshold"]))
        ramp = self.unsup_ramp(step)
        total = sup + ramp * (float(opts["hard_weight"]) * hard + float(opts["soft_weight"]) * soft)
        return total, {"sup": float(sup.detach()), "hard": float(hard.detach()), "soft": float(soft.detach())}
