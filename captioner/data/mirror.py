"""Mirror augmentation: train on a photo mirrored left ↔ right, with "left" and "right" swapped in its captions.

With a feature cache the mirrored grids come from a second cache (`captioner extract-features --mirror`): a CNN
is not mirror-equivariant, so mirroring the grid would not give the grid of the mirrored photo. Without one the
preprocessed image is mirrored (the preprocessing is a symmetric resize, so this is the mirrored photo's input).
"""

import re
from typing import Any

import numpy as np
import torch

from captioner.errors import CaptionerError

_SIDES = re.compile(r"\b(left|right)\b", re.IGNORECASE)
_OTHER_SIDE = {"left": "right", "right": "left"}


def mirror_caption(caption: str) -> str:
    """The caption of the mirrored photo: each whole word "left" ↔ "right", keeping its capitalisation."""

    def swap(match: re.Match) -> str:
        word = match.group(0)
        other = _OTHER_SIDE[word.lower()]
        return other.upper() if word.isupper() else other.capitalize() if word[0].isupper() else other

    return _SIDES.sub(swap, caption)


def mirror_regions(targets: np.ndarray, grid_size: tuple[int, int]) -> np.ndarray:
    """Per-word grid regions (T, L) of a photo → those of its mirror: each row's grid columns reversed."""
    H, W = grid_size
    return np.ascontiguousarray(targets.reshape(-1, H, W)[:, :, ::-1].reshape(targets.shape))  # (T, H·W) → (T, H, W) → (T, H·W)


class Mirror:
    """Draws, per sample, whether it is mirrored (probability `prob`); `features` is the mirrored feature cache
    the dataset reads mirrored grids from when it trains from a cache (None when it decodes images)."""

    def __init__(self, prob: float, features: Any = None) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f"mirror probability must be in [0, 1], got {prob}")
        if features is not None and not features.mirrored:
            raise CaptionerError(f"{features.path} holds unmirrored grids; make it with captioner extract-features --mirror")
        self.prob, self.features = prob, features

    def draw(self) -> bool:
        return self.prob > 0 and bool(torch.rand(()) < self.prob)

    def check_covers(self, image_ids: list[int]) -> None:
        """Refuse a mirrored cache that lacks some of the training images, naming how many and one of them."""
        if self.features is None:
            return
        missing = [i for i in image_ids if i not in self.features]
        if missing:
            raise CaptionerError(f"{self.features.path}: {len(missing)} of {len(image_ids)} training images are not "
                                 f"in the mirrored feature cache (e.g. image id {missing[0]})")
