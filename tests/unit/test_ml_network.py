"""The DeepLabV3+ factory: packaged ImageNet weights, heads, dropout, and the predictor's padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ml.network import _lite_key_map, build_model, lite_weights_file, reinit_head, resolve_device
from ml.predict import ModelPredictor, predict_labels

torch.set_num_threads(1)
pytestmark = pytest.mark.ml


@pytest.mark.parametrize(("encoder", "expected_keys"), [("lite0", 288), ("lite2", 378)])
def test_packaged_weights_fill_every_encoder_key(encoder: str, expected_keys: int) -> None:
    net = build_model(encoder, num_classes=9)
    package = torch.load(lite_weights_file(encoder), map_location="cpu", weights_only=True)
    encoder_state = net.model.encoder.model.state_dict()
    mapping = _lite_key_map(list(package), net.model.encoder.model)
    # Every encoder key has exactly one package key; what is left over is the classifier head.
    assert len(encoder_state) == expected_keys
    assert sorted(mapping.values()) == sorted(encoder_state)
    assert all(k.startswith(("_conv_head.", "_bn1.", "_fc.")) for k in set(package) - set(mapping))
    for source_key, target_key in mapping.items():
        assert torch.equal(encoder_state[target_key], package[source_key]), target_key


def test_unpretrained_build_differs_from_pretrained() -> None:
    pretrained = build_model("lite0", pretrained=True).model.encoder.model.conv_stem.weight
    random = build_model("lite0", pretrained=False).model.encoder.model.conv_stem.weight
    assert not torch.equal(pretrained, random)


def test_resnet50_without_weights_warns() -> None:
    with pytest.warns(UserWarning, match="from scratch"):
        build_model("resnet50", num_classes=3)


def test_architecture_and_output_shape() -> None:
    net = build_model("lite0", num_classes=5, pretrained=False).eval()
    aspp = net.model.decoder.aspp[0]
    rates = [m.dilation[0] for m in aspp.modules() if isinstance(m, nn.Conv2d) and m.dilation[0] > 1]
    assert rates == [6, 12, 18]
    assert net.model.decoder.block1[0].out_channels == 48
    with torch.no_grad():
        assert net(torch.rand(2, 3, 64, 96) * 255).shape == (2, 5, 64, 96)


def test_cps_heads_differ_but_encoders_match() -> None:
    a, b = build_model("lite0"), build_model("lite0")
    reinit_head(a, seed=1)
    reinit_head(b, seed=2)
    for (name, pa), pb in zip(a.model.encoder.state_dict().items(), b.model.encoder.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    head_a = a.model.segmentation_head[0].weight
    assert not torch.equal(head_a, b.model.segmentation_head[0].weight)
    c = build_model("lite0")
    reinit_head(c, seed=1)
    assert torch.equal(head_a, c.model.segmentation_head[0].weight)  # a seed gives the same head


def test_predictor_any_size_and_mc_dropout() -> None:
    torch.manual_seed(0)
    net = build_model("lite0", num_classes=4, decoder_dropout=True, pretrained=False)
    assert sum(isinstance(m, nn.Dropout2d) for m in net.modules()) == 2
    predictor = ModelPredictor([net], 4, resolve_device("cpu"), batch_size=2)
    images = np.random.default_rng(0).integers(0, 256, (3, 37, 50, 3), dtype=np.uint8)
    probs = predictor.predict_proba(images)
    assert probs.shape == (3, 4, 37, 50) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert np.array_equal(probs, predictor.predict_proba(images))  # eval mode: deterministic
    mc = predictor.predict_proba_mc(images[:1], passes=3)
    assert mc.shape == (3, 1, 4, 37, 50)
    assert not np.allclose(mc[0], mc[1])  # dropout active
    (used,) = predictor.models
    assert not used.training and all(not m.training for m in used.modules() if isinstance(m, nn.BatchNorm2d))
    assert predict_labels(predictor, images).shape == (3, 37, 50)


def test_prediction_on_cpu_runs_channels_last_without_touching_the_network_it_was_given() -> None:
    torch.manual_seed(0)
    net = build_model("lite0", num_classes=4, pretrained=False)  # in training mode, NCHW: a network mid-training
    stem = net.model.encoder.model.conv_stem.weight
    assert not stem.is_contiguous(memory_format=torch.channels_last)
    default = ModelPredictor([net], 4, resolve_device("cpu"), amp=False)
    nchw = ModelPredictor([net], 4, resolve_device("cpu"), amp=False, channels_last=False)
    assert default.channels_last and not nchw.channels_last
    (held,) = default.models
    assert held is not net
    assert held.model.encoder.model.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    assert nchw.models[0] is net
    images = np.random.default_rng(2).integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
    fast = default.predict_proba(images)
    # The given network is still the training one: NCHW, its own weights, in training mode.
    assert net.training and net.model.encoder.model.conv_stem.weight is stem
    assert not stem.is_contiguous(memory_format=torch.channels_last)
    plain = nchw.predict_proba(images)
    assert np.allclose(fast, plain, atol=1e-5)  # the same sums in another order
    # ... so the same labels, except where the two best classes are within that rounding of each other.
    top2 = np.sort(plain, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    assert clear.mean() > 0.9
    assert np.array_equal(fast.argmax(axis=1)[clear], plain.argmax(axis=1)[clear])
    assert ModelPredictor([held], 4, resolve_device("cpu")).models[0] is held  # channels-last already: no copy


def test_two_branch_predictor_averages() -> None:
    nets = [build_model("lite0", num_classes=3, pretrained=False) for _ in range(2)]
    predictor = ModelPredictor(nets, 3, resolve_device("cpu"))
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    branches = predictor.branch_probas(images)
    assert len(branches) == 2
    assert np.allclose(predictor.predict_proba(images), (branches[0] + branches[1]) / 2, atol=1e-6)


def test_flip_averages_the_image_and_its_mirror_at_any_size() -> None:
    torch.manual_seed(0)
    net = build_model("lite0", num_classes=4, pretrained=False)
    plain = ModelPredictor([net], 4, resolve_device("cpu"), amp=False)
    flip = ModelPredictor([net], 4, resolve_device("cpu"), amp=False, flip=True)
    # 50 columns are padded to 64 on the right: the mirror is of the real columns, padded on the right as well.
    images = np.random.default_rng(0).integers(0, 256, (2, 37, 50, 3), dtype=np.uint8)
    mirrored = plain.predict_proba(np.ascontiguousarray(images[:, :, ::-1]))[..., ::-1]
    expected = (plain.predict_proba(images) + mirrored) / 2
    got = flip.predict_proba(images)
    assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, plain.predict_proba(images), atol=1e-3)
