"""A tiny randomly initialised CNN: fast enough for tests, and trainable end to end."""

from torch import nn

from captioner.encoders.base import ImageEncoder
from captioner.encoders.registry import ENCODERS


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@ENCODERS.register("tiny_cnn")
def tiny_cnn(*, pretrained: bool = False, weights_path: str | None = None, image_size: int = 64, **kwargs) -> ImageEncoder:
    """Four stride-2 convs, 32 channels at stride 16; random weights (no pretrained version exists)."""
    widths = [3, 16, 32, 32, 32]
    stages = [(f"conv{i}", _conv(cin, cout)) for i, (cin, cout) in enumerate(zip(widths, widths[1:]))]
    kwargs.setdefault("trainable_stages", len(stages))
    return ImageEncoder("tiny_cnn", stages, channels=widths[-1], stride=16, image_size=image_size, **kwargs)
