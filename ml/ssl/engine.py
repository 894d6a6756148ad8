"""The training loop shared by every method: data streams, optimiser and poly schedule, progress and
cancellation, validation, and checkpoints that a run resumes from.

A step's randomness (batch order, augmentation, CutMix, AugIN, dropout) is seeded from (seed, step),
so a resumed run continues with exactly the steps it would have taken.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml import checkpoint
from ml.data import CachedSource, WeakAugDataset, label_pixel_counts
from ml.interfaces import Cancelled, ProgressFn, SampleSource, TrainConfig, TrainResult
from ml.losses import enet_class_weights
from ml.metrics import evaluate_predictor
from ml.network import autocast_context, resolve_device
from ml.predict import ModelPredictor
from ml.pseudo import PseudoLabelSource
from ml.ssl.method import COMMON_OPTIONS, Method, MethodContext, StepBatch

# Config fields that may change between a run and its resumption.
_RESUMABLE_DIFFERENCES = {"device", "eval_every", "amp"}
_PROGRESS_INTERVAL_S = 0.5
_LABELED_STREAM, _UNLABELED_STREAM = 1, 2


def merged_options(config: TrainConfig, method_cls: type[Method]) -> dict[str, Any]:
    defaults = {**COMMON_OPTIONS, **method_cls.options}
    unknown = sorted(set(config.options) - set(defaults))
    if unknown:
        raise ValueError(f"unknown options for method {config.method!r}: {unknown}; known: {sorted(defaults)}")
    return {**defaults, **config.options}


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    return asdict(config)


def _check_resumable(saved: dict[str, Any], config: TrainConfig, path: Path) -> None:
    current = _config_dict(config)
    changed = sorted(
        k for k in set(saved) | set(current) if k not in _RESUMABLE_DIFFERENCES and saved.get(k) != current.get(k)
    )
    if changed:
        raise ValueError(
            f"checkpoint {path} was made with a different configuration ({', '.join(changed)}); "
            "train with resume=False or another checkpoint path"
        )


def _poly_factor(step: int, total: int, power: float) -> float:
    return max(0.0, 1.0 - step / max(total, 1)) ** power


class Trainer:
    """One training run of `method_cls`; `run()` returns the TrainResult."""

    def __init__(
        self,
        method_cls: type[Method],
        config: TrainConfig,
        labeled: SampleSource,
        unlabeled: SampleSource | None,
        val: SampleSource | None,
        checkpoint_path: Path,
        progress: ProgressFn,
        resume: bool,
        init_from: Path | None = None,
    ) -> None:
        self.config = config
        self.options = merged_options(config, method_cls)
        self.checkpoint_path = Path(checkpoint_path)
        self.progress = progress
        if not labeled.ids:
            raise ValueError("training needs at least one labelled image")
        cache = bool(self.options["cache_images"])
        self.labeled = CachedSource(labeled) if cache else labeled
        use_pool = unlabeled is not None and method_cls.uses_unlabeled and len(unlabeled.ids) > 0
        if use_pool and method_cls.pool_labels and not isinstance(unlabeled, PseudoLabelSource):
            # The pool source of a simulation is the oracle: a method that trains on pool labels must be
            # given pseudo-labels explicitly, never whatever labels the pool happens to hold.
            raise ValueError(f"method {config.method!r} needs its pool as a PseudoLabelSource")
        self.pool_labels = use_pool and method_cls.pool_labels
        self.unlabeled = (CachedSource(unlabeled) if cache else unlabeled) if use_pool and unlabeled else None
        self.val = val
        self.device = resolve_device(config.device)

        saved = self._load_checkpoint() if resume else None
        if saved is not None:
            _check_resumable(saved["config"], config, self.checkpoint_path)
        self.saved = saved
        if saved is not None and saved.get("finished"):
            return

        if saved is not None:
            weights = np.asarray(saved["class_weights"], dtype=np.float64)
        else:
            weights = enet_class_weights(label_pixel_counts(self.labeled, config.num_classes))
        self.class_weights = weights
        driving = self.unlabeled if self.unlabeled is not None else self.labeled
        driving_batch = config.batch_unlabeled if self.unlabeled is not None else config.batch_labeled
        ctx = MethodContext(
            config=config,
            device=self.device,
            class_weights=torch.tensor(weights, dtype=torch.float32, device=self.device),
            options=self.options,
            steps_per_epoch=max(1, math.ceil(len(driving.ids) / driving_batch)),
        )
        torch.manual_seed(config.seed)
        self.method = method_cls(ctx, pretrained=saved is None and init_from is None)
        if saved is None and init_from is not None:
            self._init_weights(Path(init_from))
        self.optimizer = self._optimizer()
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.images_trained = 0
        if saved is not None:
            self._restore(saved)

    # ----------------------------------------------------------------------------- set-up

    def _load_checkpoint(self) -> dict[str, Any] | None:
        return checkpoint.load_if_exists(self.checkpoint_path)

    def _init_weights(self, path: Path) -> None:
        """Warm start: every network of this method takes the weights of the same-named network of a finished
        run of the same method; the optimiser, schedule and class weights start afresh."""
        weights = checkpoint.network_weights(path, method=self.config.method)
        for name, net in self.method.modules().items():
            if name not in weights:
                raise checkpoint.CheckpointError(f"{path} has no network {name!r} to start {name} from")
            net.load_state_dict(weights[name])

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg, opts = self.config, self.options
        encoder, head = [], []
        for net in self.method.trainable():
            encoder += net.encoder_parameters()
            head += net.head_parameters()
        groups = [
            {"params": encoder, "lr": cfg.encoder_lr, "base_lr": cfg.encoder_lr},
            {"params": head, "lr": cfg.lr, "base_lr": cfg.lr},
        ]
        if opts["optimizer"] == "adamw":
            return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        if opts["optimizer"] == "sgd":
            return torch.optim.SGD(groups, momentum=float(opts["momentum"]), weight_decay=cfg.weight_decay)
        raise ValueError(f"unknown optimizer {opts['optimizer']!r}; choose adamw or sgd")

    def _restore(self, saved: dict[str, Any]) -> None:
        for name, net in self.method.modules().items():
            net.load_state_dict(saved["modules"][name])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.step = int(saved["step"])
        self.history = list(saved["history"])
        self.train_seconds = float(saved["train_seconds"])
        self.images_trained = int(saved["images_trained"])
        torch.set_rng_state(saved["rng"]["torch"])

    def _streams(self) -> tuple[WeakAugDataset, WeakAugDataset | None]:
        cfg = self.config
        pad = self.method.modules()[self.method.predict_with[0]].pad_value
        labeled = WeakAugDataset(
            self.labeled,
            cfg.crop_size,
            cfg.scale_range,
            cfg.seed,
            _LABELED_STREAM,
            pad,
            candidate_masks=self.method.candidate_masks(),
            rare_crop=float(self.options["rare_crop"]),
            class_weights=np.asarray(self.class_weights),
        )
        unlabeled = None
        if self.unlabeled is not None:
            # Labels of pool images come from the labelled set only, never from the pool source
            # (in simulation the pool source is the oracle).
            unlabeled = WeakAugDataset(
                self.unlabeled,
                cfg.crop_size,
                cfg.scale_range,
                cfg.seed,
                _UNLABELED_STREAM,
                pad,
                label_source=None if self.pool_labels else self.labeled,
            )
        return labeled, unlabeled

    # ------------------------------------------------------------------------ checkpoints

    def _state(self, finished: bool, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "method": self.config.method,
            "config": _config_dict(self.config),
            "options": self.options,
            "modules": {name: net.state_dict() for name, net in self.method.modules().items()},
            "predict_with": self.method.predict_with,
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "finished": finished,
            "metrics": metrics,
            "class_weights": [float(w) for w in self.class_weights],
            "history": self.history,
            "train_seconds": self.train_seconds,
            "images_trained": self.images_trained,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state()},
        }

    def _images_per_second(self) -> float:
        return self.images_trained / self.train_seconds if self.train_seconds > 0 else 0.0

    # --------------------------------------------------------------------------- training

    def _report(self, fraction: float, message: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_report >= _PROGRESS_INTERVAL_S:
            self._last_report = now
            self.progress(min(max(fraction, 0.0), 1.0), message)

    def _validate(self, low: float, high: float) -> dict[str, Any]:
        """Dataset-level mIoU on the validation source; progress moves from `low` to `high`."""
        assert self.val is not None
        nets = [self.method.modules()[n] for n in self.method.predict_with]
        predictor = ModelPredictor(
            nets,
            self.config.num_classes,
            self.device,
            amp=self.config.amp,
            channels_last=self.options["channels_last"],
        )

        def report(fraction: float, message: str) -> None:
            self._report(low + (high - low) * fraction, f"validating: {message}")

        result = evaluate_predictor(predictor, self.val, batch_size=8, progress=report)
        self.method.train_mode()
        return {
            "miou": result["miou"],
            "per_class_iou": result["per_class_iou"],
            "labeled_count": len(self.labeled.ids),
            "steps": self.step,
        }

    def _channels_last(self, batch: Any) -> Any:
        use = self.options["channels_last"]
        if use if use is not None else self.device.type == "cuda":
            batch.image = batch.image.contiguous(memory_format=torch.channels_last)
        return batch

    def _train_step(self, labeled: WeakAugDataset, unlabeled: WeakAugDataset | None) -> dict[str, Any]:
        cfg, step = self.config, self.step
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        rng = np.random.default_rng([cfg.seed, step, 0x57E9])
        use_pool = unlabeled is not None and self.method.uses_pool_at(step)
        batch = StepBatch(
            self._channels_last(labeled.batch(step, cfg.batch_labeled).to(self.device)),
            self._channels_last(unlabeled.batch(step, cfg.batch_unlabeled).to(self.device))
            if unlabeled is not None and use_pool
            else None,
        )
        factor = _poly_factor(step, cfg.steps, float(self.options["poly_power"]))
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        self.method.train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(self.device, cfg.amp):
            loss, parts = self.method.loss(batch, step, rng)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at step {step}")
        loss.backward()
        if self.options["grad_clip"] is not None:
            params = [p for net in self.method.trainable() for p in net.parameters()]
            torch.nn.utils.clip_grad_norm_(params, float(self.options["grad_clip"]))
        self.optimizer.step()
        self.method.after_step(step)
        self.images_trained += cfg.batch_labeled + (cfg.batch_unlabeled if use_pool else 0)
        return {"step": step, "loss": float(loss.detach()), **parts, "lr": self.optimizer.param_groups[1]["lr"]}

    def run(self) -> TrainResult:
        started = time.perf_counter()
        self._last_report = -math.inf
        saved = self.saved
        if saved is not None and saved.get("finished"):
            self.progress(1.0, "already trained")
            ips = saved["images_trained"] / saved["train_seconds"] if saved["train_seconds"] > 0 else 0.0
            return TrainResult(self.checkpoint_path, saved["metrics"], 0.0, ips, saved["history"])

        cfg = self.config
        labeled, unlabeled = self._streams()
        every = max(1, int(self.options["checkpoint_every"]))
        train_share = 0.95 if self.val is not None else 1.0
        self._report(self.step / cfg.steps * train_share, f"training {cfg.method} from step {self.step}", True)
        metrics: dict[str, Any] = {"labeled_count": len(self.labeled.ids), "steps": cfg.steps}
        try:
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                record = self._train_step(labeled, unlabeled)
                record["seconds"] = time.perf_counter() - t0
                self.train_seconds += record["seconds"]
                self.history.append(record)
                self.step += 1
                fraction = self.step / cfg.steps * train_share
                if (
                    self.val is not None
                    and cfg.eval_every > 0
                    and self.step % cfg.eval_every == 0
                    and self.step < cfg.steps
                ):
                    self.history.append({"step": self.step, "eval": self._validate(fraction, fraction)})
                if self.step % every == 0 and self.step < cfg.steps:
                    checkpoint.save(self._state(False, {}), self.checkpoint_path)
                self._report(
                    fraction, f"step {self.step}/{cfg.steps} loss {record['loss']:.4f}", force=self.step == cfg.steps
                )
            if self.val is not None:
                metrics = self._validate(train_share, 1.0)
                self.history.append({"step": self.step, "eval": metrics})
        except Cancelled:
            # Keep the work done so far: a later run with resume=True continues from here.
            checkpoint.save(self._state(False, {}), self.checkpoint_path)
            raise

        metrics["images_per_second"] = self._images_per_second()
        checkpoint.save(self._state(True, metrics), self.checkpoint_path)
        self.progress(1.0, f"done: {self.step} steps" + (f", mIoU {metrics['miou']:.4f}" if "miou" in metrics else ""))
        return TrainResult(
            self.checkpoint_path, metrics, time.perf_counter() - started, self._images_per_second(), self.history
        )
