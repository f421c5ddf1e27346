"""The encoders' image preprocessing: PIL image → normalised (3, S, S) float tensor."""

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image


class Preprocess:
    """Bicubic resize to S × S (aspect ratio not kept, nothing cropped), then (x / 255 − mean) / std.

    Value for value what torchvision's Compose([Resize((S, S), BICUBIC, antialias=True), ToTensor(), Normalize])
    gives a PIL image (tests/test_encoders.py checks it), in about two thirds of its time: the pixels go from
    the resized image to float once, without ToTensor's intermediate copies. A plain object, so DataLoader worker
    processes can pickle it.
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)  # (3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)  # (3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":
            image = image.convert("RGB")
        resized = image.resize((self.size, self.size), Image.Resampling.BICUBIC)
        pixels = np.asarray(resized).transpose(2, 0, 1).astype(np.float32, order="C")  # (S, S, 3) uint8 → (3, S, S) float, contiguous
        return torch.from_numpy(pixels).div_(255).sub_(self.mean).div_(self.std)

    def __repr__(self) -> str:
        return f"Preprocess(size={self.size}, mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"
