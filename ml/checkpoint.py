"""The one checkpoint format of marslabel models: written and read here only.

A checkpoint is a torch-saved dict: the training config, the method's networks (`modules`), which of them
predict (`predict_with`), and for a run in progress the optimiser, step, history and RNG state that a resumed
run continues from. The trainer (ml.ssl.engine) writes it, a warm-started round (ml.al_round) reads another
round's networks from it, and `load_predictor` / `marslabel evaluate` read a finished one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FORMAT = "marslabel-train/1"


class CheckpointError(ValueError):
    """A file that is not a marslabel checkpoint, or one that does not fit where it is used."""


def save(state: dict[str, Any], path: Path) -> None:
    """Write atomically (a temporary file, then a rename): a reader never sees half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({**state, "format": FORMAT}, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for a file that is not a torch pickle
        raise CheckpointError(f"{path} is not a marslabel checkpoint ({type(exc).__name__})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a marslabel checkpoint (format {FORMAT!r} expected)")
    return state


def load_if_exists(path: Path) -> dict[str, Any] | None:
    return load(path) if Path(path).exists() else None


def network_weights(path: Path, method: str | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """The networks of a finished checkpoint, by module name; `method`, when given, must match its method."""
    state = load(path)
    if method is not None and state.get("method") != method:
        raise CheckpointError(f"{path} holds a {state.get('method')} model, not {method}; cannot start from it")
    if not state.get("finished", False):
        raise CheckpointError(f"{path} is a training run in progress, not a finished model")
    return dict(state["modules"])
