"""The browser decoder of an official SAM checkpoint: exported with segment_anything's own SamOnnxModel, it has
the standard SAM ONNX interface and computes what the PyTorch model computes; fetch-models' export is named after
the checkpoint's sha256 and skipped when in place; the server names and serves it, and a missing one is named.

No checkpoint can be downloaded here, so the "checkpoint" is a SAM built from the package's real PromptEncoder and
MaskDecoder classes with random weights (a slim transformer, to keep the export fast), saved as a state dict; the
image encoder is a stand-in, since only the prompt decoder is exported."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from segment_anything import sam_model_registry  # noqa: E402
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer  # noqa: E402
from segment_anything.utils.onnx import SamOnnxModel  # noqa: E402

from ml.sam import official_export  # noqa: E402
from ml.sam.browser import DEFAULT_DECODER  # noqa: E402
from ml.sam.models import MODEL_ID, ModelFilesError, sha256_of  # noqa: E402
from ml.sam.official_export import (  # noqa: E402
    INPUT_NAMES,
    OUTPUT_NAMES,
    RECORD,
    checkpoint_sha256,
    decoder_file_name,
    export_official_decoder,
    read_record,
)
from server.frontend import add_frontend  # noqa: E402
from server.settings import Settings  # noqa: E402


class _StandInImageEncoder(torch.nn.Module):
    img_size = 1024  # all SamOnnxModel reads of the image encoder

    def forward(self, x: Any) -> Any:
        return x


def _tiny_sam(seed: int) -> Sam:
    torch.manual_seed(seed)
    prompt_encoder = PromptEncoder(
        embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=16
    )
    transformer = TwoWayTransformer(depth=1, embedding_dim=256, mlp_dim=64, num_heads=8)
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3, transformer=transformer, transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=32
    )
    return Sam(_StandInImageEncoder(), prompt_encoder, mask_decoder).eval()


def _builder(calls: list[str]) -> Any:
    # What sam_model_registry["vit_b"] does with a checkpoint, for the tiny SAM: build, then load the file.
    def build(checkpoint: str) -> Sam:
        calls.append(checkpoint)
        sam = _tiny_sam(seed=99)
        sam.load_state_dict(torch.load(checkpoint, weights_only=True))
        return sam

    return build


@dataclass
class Exported:
    sam: Sam
    checkpoint: Path
    model_dir: Path
    decoder: Path
    log: list[str]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    root = tmp_path_factory.mktemp("official")
    sam = _tiny_sam(seed=0)
    checkpoint = root / "sam_vit_b_tiny.pth"
    torch.save(sam.state_dict(), checkpoint)
    model_dir = root / "models"
    log: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sam_model_registry, "vit_b", _builder([]))
        decoder = export_official_decoder(checkpoint, "vit_b", model_dir, log.append)
    yield Exported(sam, checkpoint, model_dir, decoder, log)


def _feeds(points: int, has_mask: bool, size: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 1024 * min(size) / max(size), (1, points, 2)).astype(np.float32)
    labels = rng.integers(0, 2, (1, points)).astype(np.float32)
    # SAM's convention without a box: a padding point labelled -1 (../shared/SAM.md).
    coords = np.concatenate([coords, np.zeros((1, 1, 2), np.float32)], axis=1)
    labels = np.concatenate([labels, -np.ones((1, 1), np.float32)], axis=1)
    return {
        "image_embeddings": rng.normal(0, 0.2, (1, 256, 64, 64)).astype(np.float32),
        "point_coords": coords,
        "point_labels": labels,
        "mask_input": rng.normal(0, 3, (1, 1, 256, 256)).astype(np.float32),
        "has_mask_input": np.array([1.0 if has_mask else 0.0], np.float32),
        "orig_im_size": np.array(size, np.float32),
    }


def test_the_export_is_named_after_the_checkpoint_and_recorded(exported: Exported) -> None:
    sha = sha256_of(exported.checkpoint)
    assert exported.decoder == exported.model_dir / f"sam-vit_b-{sha[:12]}.decoder.onnx"
    assert exported.decoder.name == decoder_file_name("vit_b", sha)
    entry = read_record(exported.model_dir)[exported.decoder.name]
    assert entry["sha256"] == sha256_of(exported.decoder) and entry["checkpoint"]["sha256"] == sha
    assert entry["opset"] == 17 and entry["model_type"] == "vit_b"


def test_the_standard_sam_onnx_interface_with_dynamic_points_and_size(exported: Exported) -> None:
    session = ort.InferenceSession(str(exported.decoder), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in session.get_inputs()}
    assert list(inputs) == INPUT_NAMES
    assert inputs["image_embeddings"] == [1, 256, 64, 64] and inputs["mask_input"] == [1, 1, 256, 256]
    assert inputs["point_coords"][:1] == [1] and isinstance(inputs["point_coords"][1], str)  # any number of points
    assert inputs["has_mask_input"] == [1] and inputs["orig_im_size"] == [2]
    assert [o.name for o in session.get_outputs()] == OUTPUT_NAMES
    for points, size in [(1, (300, 400)), (4, (512, 200))]:
        masks, scores, low_res = session.run(OUTPUT_NAMES, _feeds(points, False, size, seed=points))
        assert masks.shape == (1, 1, *size) and scores.shape == (1, 1) and low_res.shape == (1, 1, 256, 256)


# Sizes other than the export's dummy (1500×2250): the package's 1.0 exporter froze its aspect ratio.
@pytest.mark.parametrize(("points", "has_mask", "size"), [(1, False, (240, 320)), (3, True, (600, 250))])
def test_onnxruntime_computes_what_the_pytorch_decoder_computes(
    exported: Exported, points: int, has_mask: bool, size: tuple[int, int]
) -> None:
    feeds = _feeds(points, has_mask, size, seed=10 + points)
    session = ort.InferenceSession(str(exported.decoder), providers=["CPUExecutionProvider"])
    onnx_out = session.run(OUTPUT_NAMES, feeds)
    with torch.no_grad():
        torch_out = SamOnnxModel(exported.sam, return_single_mask=True)(
            **{name: torch.from_numpy(value) for name, value in feeds.items()}
        )
    for name, ours, theirs in zip(OUTPUT_NAMES, onnx_out, torch_out, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
    assert np.abs(onnx_out[2]).max() > 1e-2  # random weights still give a mask, not a constant that trivially agrees


def test_a_second_export_is_skipped_and_the_record_spares_hashing(
    exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert any("exporting the prompt decoder" in line for line in exported.log)
    calls: list[str] = []
    monkeypatch.setitem(sam_model_registry, "vit_b", _builder(calls))
    monkeypatch.setattr(official_export, "_hash_once", lambda *_: pytest.fail("hashed a recorded checkpoint"))
    log: list[str] = []
    assert export_official_decoder(exported.checkpoint, "vit_b", exported.model_dir, log.append) == exported.decoder
    assert calls == [] and "nothing exported" in log[0]
    assert checkpoint_sha256(exported.checkpoint, exported.model_dir) == sha256_of(exported.checkpoint)


def test_a_missing_checkpoint_or_an_unknown_type_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "sam_vit_h.pth"
    with pytest.raises(ModelFilesError, match=str(missing)):
        export_official_decoder(missing, "vit_h", tmp_path)
    missing.parent.mkdir()
    missing.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFilesError, match="vit_x"):
        export_official_decoder(missing, "vit_x", tmp_path)
    assert not (tmp_path / RECORD).exists()


def _client(model_dir: Path, checkpoint: Path | None) -> TestClient:
    app = FastAPI()
    settings = Settings(
        model_dir=model_dir, sam_checkpoint=checkpoint, sam_checkpoint_type="vit_b", frontend_dir=model_dir / "none"
    )
    add_frontend(app, settings)
    return TestClient(app)


def test_the_server_names_and_serves_the_checkpoints_decoder(exported: Exported) -> None:
    client = _client(exported.model_dir, exported.checkpoint)
    manifest = client.get("/app/models/manifest.json").json()
    assert manifest == {
        "model": f"sam-vit_b-{exported.checkpoint.stem}",
        "decoder": exported.decoder.name,
        "problem": None,
    }
    answer = client.get(f"/app/models/{exported.decoder.name}")
    assert answer.status_code == 200 and answer.content == exported.decoder.read_bytes()
    other = client.get("/app/models/sam-vit_b-000000000000.decoder.onnx")
    assert other.status_code == 404 and exported.decoder.name in other.json()["detail"]


def test_a_decoder_not_exported_or_a_missing_checkpoint_is_named(exported: Exported, tmp_path: Path) -> None:
    fresh = tmp_path / "sam_vit_b_new.pth"
    fresh.write_bytes(exported.checkpoint.read_bytes() + b"\0")  # another checkpoint, never exported
    client = _client(exported.model_dir, fresh)
    name = client.get("/app/models/manifest.json").json()["decoder"]
    assert name == decoder_file_name("vit_b", sha256_of(fresh))
    answer = client.get(f"/app/models/{name}")
    detail = answer.json()["detail"]
    assert answer.status_code == 404 and str(exported.model_dir / name) in detail and "fetch-models" in detail
    assert client.get(f"/app/models/{exported.decoder.name}").status_code == 404  # the old checkpoint's is not served

    gone = _client(exported.model_dir, tmp_path / "gone.pth")
    manifest = gone.get("/app/models/manifest.json").json()
    assert manifest["decoder"] is None and str(tmp_path / "gone.pth") in manifest["problem"]
    refused = gone.get(f"/app/models/{exported.decoder.name}")
    assert refused.status_code == 404 and str(tmp_path / "gone.pth") in refused.json()["detail"]


def test_without_a_checkpoint_the_default_decoder_is_named(tmp_path: Path) -> None:
    client = _client(tmp_path, None)
    assert client.get("/app/models/manifest.json").json() == {
        "model": MODEL_ID,
        "decoder": DEFAULT_DECODER,
        "problem": None,
    }
    refused = client.get("/app/models/sam-vit_b-000000000000.decoder.onnx")
    assert refused.status_code == 404 and "not served" in refused.json()["detail"]


def _fetch_models(monkeypatch: pytest.MonkeyPatch, model_dir: Path, checkpoint: Path) -> int:
    import ml.sam.browser
    import ml.sam.models
    import server.web_runtime
    from server.cli import handle_fetch_models
    from server.settings import get_settings

    # Only the export is under test: the pinned pair, the runtime and the derived decoders are stubbed out.
    for module, name in [
        (ml.sam.models, "fetch_models"),
        (server.web_runtime, "fetch_web_runtime"),
        (ml.sam.browser, "make_browser_decoders"),
    ]:
        monkeypatch.setattr(module, name, lambda *_args, **_kwargs: False)
    monkeypatch.setenv("MARSLABEL_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("MARSLABEL_SAM_CHECKPOINT", str(checkpoint))
    monkeypatch.setenv("MARSLABEL_SAM_CHECKPOINT_TYPE", "vit_b")
    get_settings.cache_clear()
    try:
        return handle_fetch_models(None)  # type: ignore[arg-type]
    finally:
        get_settings.cache_clear()


def test_fetch_models_exports_the_configured_checkpoint_and_names_a_missing_one(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _fetch_models(monkeypatch, exported.model_dir, exported.checkpoint) == 0
    assert f"{exported.decoder.name} (decoder of {exported.checkpoint}) is in place" in capsys.readouterr().out
    missing = tmp_path / "sam_vit_b_01ec64.pth"
    assert _fetch_models(monkeypatch, exported.model_dir, missing) == 1
    assert f"SAM checkpoint {missing} (MARSLABEL_SAM_CHECKPOINT) does not exist" in capsys.readouterr().err
