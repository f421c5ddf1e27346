"""torchvision ResNets: weights download when online, or come from a local file (`weights_path`)."""

from pathlib import Path

import torch
from torch import nn
from torchvision import models

from captioner.encoders.base import ImageEncoder
from captioner.encoders.registry import ENCODERS
from captioner.errors import CaptionerError

_RESNETS = {
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2),
    "resnet101": (models.resnet101, models.ResNet101_Weights.IMAGENET1K_V2),
    "resnet152": (models.resnet152, models.ResNet152_Weights.IMAGENET1K_V2),
}


def _load_resnet(name: str, pretrained: bool, weights_path: str | None) -> nn.Module:
    builder, weights = _RESNETS[name]
    net = builder(weights=None)
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise CaptionerError(f"{name} weights file not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CaptionerError(f"{path} is not a {name} state dict (missing {len(missing)}, unexpected {len(unexpected)} keys)")
    elif pretrained:
        try:
            net.load_state_dict(weights.get_state_dict(progress=False))
        except OSError as e:  # URLError and friends
            raise CaptionerError(
                f"could not download {name} ImageNet weights ({e.__class__.__name__}); offline, pass "
                f"weights_path=PATH to a local copy of {weights.url.rsplit('/', 1)[-1]}, or use efficientnet_lite0"
            ) from None
    return net


def _resnet_encoder(name: str, pretrained: bool, weights_path: str | None, image_size: int, **kwargs) -> ImageEncoder:
    net = _load_resnet(name, pretrained, weights_path)
    stages = [("stem", nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool))]
    stages += [(layer, getattr(net, layer)) for layer in ("layer1", "layer2", "layer3", "layer4")]
    return ImageEncoder(name, stages, channels=net.fc.in_features, stride=32, image_size=image_size, **kwargs)


def _register(name: str) -> None:
    @ENCODERS.register(name)
    def build(*, pretrained: bool = True, weights_path: str | None = None, image_size: int = 224, **kwargs) -> ImageEncoder:
        return _resnet_encoder(name, pretrained, weights_path, image_size, **kwargs)

    build.__doc__ = f"torchvision {name}: 2048 channels at stride 32; downloads weights or reads weights_path."


for _name in _RESNETS:
    _register(_name)
