"""ImageEncoder: a pretrained CNN trunk (head removed) that maps images to a grid of features."""

import hashlib
from collections.abc import Iterable, Sequence

import torch
from PIL import Image
from torch import nn
from captioner.encoders.folding import folded_copy
from captioner.encoders.preprocess import Preprocess
from captioner.grid import GridGeometry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# On a CPU, an encoder batch larger than this many input pixels costs more per image, not less: its activations
# outgrow the caches (EfficientNet-Lite0, one thread, CPU ms per image: 448 px 157 / 186 / 313 at batch 1 / 4 / 16;
# 224 px 47 / 39 / 60). Four 224-px images, or one 448-px image; see docs/PERFORMANCE.md, Collections.
CPU_CHUNK_PIXELS = 4 * 224 * 224


class ImageEncoder(nn.Module):
    """Runs named stages in order and flattens the last grid to (B, L=H·W, C).

    Args:
        name: registry name, stored in checkpoints.
        stages: the trunk as ordered (name, module) pairs; fine-tuning unfreezes from the end.
        channels: C of the last stage.
        stride: total downsampling of the last stage (32 for the usual CNNs).
        mean, std: the normalisation the weights were trained with.
        image_size: the square side images are resized to.
        pool_size: if set, adaptive-average-pool the grid to pool_size × pool_size.
        trainable_stages: how many of the top stages to fine-tune (0 = frozen).
    """

    def __init__(
        self,
        name: str,
        stages: Sequence[tuple[str, nn.Module]],
        *,
        channels: int,
        stride: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        image_size: int = 224,
        pool_size: int | None = None,
        trainable_stages: int = 0,
    ) -> None:
        super().__init__()
        if image_size < stride:
            raise ValueError(f"image_size must be at least the encoder stride ({stride}), got {image_size}")
        if pool_size is not None and pool_size < 1:
            raise ValueError(f"pool_size must be positive, got {pool_size}")
        self.name = name
        self.stages = nn.ModuleDict(stages)
        self.channels = channels
        self.stride = stride
        self.mean, self.std = tuple(mean), tuple(std)
        self.image_size = image_size
        self.pool = nn.AdaptiveAvgPool2d(pool_size) if pool_size else nn.Identity()
        self.pool_size = pool_size
        self.fine_tuned = False  # weights not the package's (set when loaded from a model file that says so)
        self.set_trainable_stages(trainable_stages)

    @property
    def grid_size(self) -> tuple[int, int]:
        """(H, W) of the feature grid for this encoder's image size."""
        return self.geometry.grid_size

    @property
    def geometry(self) -> GridGeometry:
        """Where each grid location lies on an input image (see captioner.grid): metric, targets and figures use it."""
        pool = (self.pool_size, self.pool_size) if self.pool_size else None
        return GridGeometry((self.image_size, self.image_size), self.stride, pool)

    @property
    def num_locations(self) -> int:
        h, w = self.grid_size
        return h * w

    def set_trainable_stages(self, n: int) -> None:
        """Freeze everything, then unfreeze the top `n` stages (n=0: fully frozen)."""
        if not 0 <= n <= len(self.stages):
            raise ValueError(f"trainable_stages must be in 0..{len(self.stages)}, got {n}")
        self.trainable_stages = n
        names = list(self.stages)
        for i, stage_name in enumerate(names):
            self.stages[stage_name].requires_grad_(i >= len(names) - n)
        self.train(self.training)

    def train(self, mode: bool = True) -> "ImageEncoder":
        # Frozen stages stay in eval mode so their BatchNorm statistics never drift.
        super().train(mode)
        names = list(self.stages)
        for stage_name in names[: len(names) - self.trainable_stages]:
            self.stages[stage_name].eval()
        return self

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images → (B, C, h, w) grid."""
        x = images
        for stage in self.stages.values():
            x = stage(x)
        return self.pool(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images → (B, L, C) grid features. In eval mode without autograd the trunk runs
        with its BatchNorms folded into the convolutions (`folding.folded_copy`, made again whenever a weight
        changes): the same features to float rounding, 1.15× faster for EfficientNet-Lite0 on a CPU."""
        folded = self._folded_trunk() if not self.training and not torch.is_grad_enabled() else None
        grid = self.pool(folded(images)) if folded is not None else self.feature_map(images)  # (B, C, h, w)
        return grid.flatten(2).transpose(1, 2)  # (B, h·w, C)

    def _folded_trunk(self) -> nn.Module | None:
        """The stages with BatchNorm folded in, for the weights as they are now; None where nothing folds."""
        tensors = [*self.stages.parameters(), *self.stages.buffers()]
        key = _version_key(tensors)
        cached = self.__dict__.get("_folded")  # not a registered submodule: never in state_dict, never trained
        if cached is None or cached[0] != key:
            probe = torch.randn(1, 3, 2 * self.stride, 2 * self.stride, generator=torch.Generator().manual_seed(0))
            trunk = nn.Sequential(*self.stages.values())
            cached = self.__dict__["_folded"] = (key, folded_copy(trunk, probe.to(tensors[0].device)) if tensors else None)
        return cached[1]

    @torch.no_grad()
    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images → (B, L, C) grid features, preprocessed as in training, on this encoder's device (on a CPU in
        chunks of a few images, as `Captioner.encode` does: `encode_in_chunks`)."""
        device = next(self.parameters()).device
        transform = self.transform  # a property that builds a Preprocess: once, not once per image
        pixels = torch.stack([transform(image) for image in images]).to(device)  # (B, 3, S, S)
        return encode_in_chunks(self, pixels)

    @property
    def transform(self) -> Preprocess:
        """PIL RGB image → normalised (3, S, S) tensor, S = image_size (aspect ratio not kept, nothing cropped)."""
        return Preprocess(self.image_size, self.mean, self.std)

    def describe(self) -> dict:
        """What a feature cache or checkpoint must agree on to reuse this encoder's output: for a fine-tuned
        encoder, also a digest of its weights."""
        weights = {"weights": self.weights_digest()} if self.fine_tuned else {}
        return {**weights,
            "name": self.name,
            "image_size": self.image_size,
            "pool_size": self.pool_size,
            "channels": self.channels,
            "grid_size": list(self.grid_size),
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def weights_digest(self) -> str:
        """A short hash of the values of every weight and buffer (float32, so a float16 model file and its loaded
        weights agree, and a soup of identical encoders keeps the digest), computed again only when one changes."""
        state = self.state_dict()
        key = _version_key(state.values())
        cached = self.__dict__.get("_digest")
        if cached is None or cached[0] != key:
            digest = hashlib.sha1()
            for name, tensor in state.items():
                values = tensor.detach().cpu().reshape(-1)
                values = values.float() + 0.0 if values.is_floating_point() else values  # −0.0 → 0.0: values, not bits
                digest.update(name.encode())
                digest.update(values.view(torch.uint8).numpy().tobytes())
            cached = self.__dict__["_digest"] = (key, digest.hexdigest()[:16])
        return cached[1]


def description_differences(a: dict, b: dict) -> list[str]:
    """Each setting where two `ImageEncoder.describe()` dicts disagree, as "key a vs b", in key order."""
    return [f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _version_key(tensors: Iterable[torch.Tensor]) -> tuple:
    """Names the current values of `tensors`: it changes when one is replaced or modified in place (what is
    derived from the weights, the folded trunk and the digest, is made again then)."""
    return tuple((t.data_ptr(), t._version) for t in tensors)


def encode_in_chunks(encoder: ImageEncoder, pixels: torch.Tensor, chunk_pixels: int = CPU_CHUNK_PIXELS) -> torch.Tensor:
    """(B, 3, S, S) → (B, L, C) like `encoder(pixels)`, but on a CPU in chunks of at most `chunk_pixels` input
    pixels (at least one image), which is faster there; elsewhere (a GPU) in one call. The result has the memory
    layout of one call, (B, C, L) transposed, so what reads it sums in the same order either way."""
    chunk = max(1, chunk_pixels // (pixels.shape[-2] * pixels.shape[-1]))
    if pixels.device.type != "cpu" or chunk >= len(pixels):
        return encoder(pixels)
    parts = [encoder(pixels[i : i + chunk]).transpose(1, 2) for i in range(0, len(pixels), chunk)]  # (b, C, L) each
    return torch.cat(parts).transpose(1, 2)  # (B, C, L) → (B, L, C)
