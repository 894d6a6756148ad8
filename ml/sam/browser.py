"""Decoders for the browser, derived from the pinned `sam.onnx` by `marslabel fetch-models` (no download):

- `sam.lowres.onnx`: the same graph cut to the outputs a browser uses (`low_res_masks`, `iou_predictions`);
  the full-size `masks` and their two Resize nodes go, and the client upsamples the 256² logits itself.
- `sam.lowres.int8.onnx`: that, with int8 weights (onnxruntime's dynamic quantisation): 16.5 → 4.7 MB to
  download, and the MatMuls run on int8.
- `sam.int8.onnx`: the full graph with int8 weights, for comparison in bench/sam_browser.py.

Derived bytes depend on the onnx / onnxruntime versions, so they are not pinned; instead a manifest records
the source's sha256, the tool versions, each file's sha256 and its mask agreement (IoU of the thresholded
low-res logits) with the float32 decoder on a synthetic scene. A file that does not match it is rebuilt.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ml.sam.models import DECODER_FILE, PINNED, ModelFilesError, model_paths, sha256_of

LOW_RES_OUTPUTS = ["low_res_masks", "iou_predictions"]
LOW_RES_INPUTS = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"]
BROWSER_DECODERS = ("sam.lowres.onnx", "sam.lowres.int8.onnx", "sam.int8.onnx")
# The one frontend/sam/sam-client.js loads unless told otherwise (its DEFAULT_DECODER; a browser test checks).
DEFAULT_DECODER = "sam.lowres.int8.onnx"
MANIFEST = "browser-decoders.json"
MIN_MEAN_IOU = 0.98  # int8 weights measured 0.9999 on average (../shared/SAM.md); far below means a broken file
CHECK_CLICKS = 24


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def _build(source: Path, name: str, target: Path) -> None:
    import onnx.utils
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="marslabel-decoder-") as temp:
        low_res = Path(temp) / "low_res.onnx"
        if name.startswith("sam.lowres"):
            onnx.utils.extract_model(str(source), str(low_res), LOW_RES_INPUTS, LOW_RES_OUTPUTS)
            base = low_res
        else:
            base = source
        partial = target.with_name(f".{target.name}.partial")
        if name.endswith(".int8.onnx"):
            quantize_dynamic(base, partial, weight_type=QuantType.QInt8)
        else:
            partial.write_bytes(base.read_bytes())
        partial.replace(target)


def _low_res_logits(session: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
    names = {i.name for i in session.get_inputs()}
    return session.run(["low_res_masks"], {k: v for k, v in feeds.items() if k in names})[0]


def mask_agreement(reference: Path, candidate: Path, clicks: int = CHECK_CLICKS) -> dict[str, float]:
    """IoU of the thresholded low-res masks of two decoders on a synthetic disc scene (a click on the disc
    and random clicks of 1–3 points); mean and worst."""
    from ml.sam.encoder import OnnxEncoder, ort_session
    from ml.sam.interface import Prompt, prompt_arrays
    from ml.sam.scenes import disc_scene

    encoder_path = model_paths(reference.parent).encoder
    image, _disc = disc_scene(240, 320, (120.0, 100.0), 45, seed=3)
    embedding = OnnxEncoder(encoder_path, 2).encode(image)
    sessions = [ort_session(reference, 2), ort_session(candidate, 2)]
    rng = np.random.default_rng(0)
    prompts = [Prompt([(120.0, 100.0)], [1])]
    for _ in range(clicks - 1):
        count = int(rng.integers(1, 4))
        points = [(float(rng.uniform(0, 320)), float(rng.uniform(0, 240))) for _ in range(count)]
        prompts.append(Prompt(points, [1] + [int(rng.integers(0, 2)) for _ in range(count - 1)]))
    ious = []
    for prompt in prompts:
        coords, labels = prompt_arrays(prompt, embedding.scale)
        feeds = {
            "image_embeddings": embedding.data.astype(np.float32),
            "point_coords": coords,
            "point_labels": labels,
            "mask_input": np.zeros((1, 1, 256, 256), np.float32),
            "has_mask_input": np.zeros(1, np.float32),
            "orig_im_size": np.array(embedding.original_size, np.float32),
        }
        a, b = (_low_res_logits(session, feeds) > 0 for session in sessions)
        ious.append(float((a & b).sum() / max((a | b).sum(), 1)))
    return {"mean_iou": float(np.mean(ious)), "worst_iou": float(np.min(ious)), "prompts": len(ious)}


def _read_manifest(model_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((model_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def browser_decoder_problems(model_dir: Path) -> list[str]:
    """What is missing or stale among the derived decoders; empty when all match the manifest."""
    manifest = _read_manifest(model_dir)
    if manifest.get("source_sha256") != PINNED[DECODER_FILE][1]:
        return [f"{model_dir / MANIFEST} is missing or names another source decoder"]
    problems = []
    for name in BROWSER_DECODERS:
        path = model_dir / name
        recorded = manifest.get("files", {}).get(name, {}).get("sha256")
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif sha256_of(path) != recorded:
            problems.append(f"{path} does not match its sha256 in {MANIFEST}")
    return problems


def make_browser_decoders(model_dir: Path, log: Callable[[str], None] = print) -> bool:
    """Derive the browser decoders from the checked sam.onnx; True when something was built."""
    if not browser_decoder_problems(model_dir):
        log(f"browser SAM decoders in {model_dir} are in place (sha256 checked); nothing built")
        return False
    source = model_paths(model_dir).decoder
    files: dict[str, dict[str, Any]] = {}
    for name in BROWSER_DECODERS:
        target = model_dir / name
        log(f"deriving {name} from {DECODER_FILE}")
        _build(source, name, target)
        agreement = mask_agreement(source, target)
        if agreement["mean_iou"] < MIN_MEAN_IOU:
            target.unlink()
            raise ModelFilesError(f"{name} agrees with {DECODER_FILE} at mean mask IoU {agreement['mean_iou']:.4f}")
        files[name] = {"sha256": sha256_of(target), "bytes": target.stat().st_size, **agreement}
        log(f"{name}: {files[name]['bytes']:,} bytes, mask IoU vs float32 mean {agreement['mean_iou']:.4f}")
    manifest = {"source": DECODER_FILE, "source_sha256": PINNED[DECODER_FILE][1], **_versions(), "files": files}
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return True
