"""Reading user images safely: EXIF orientation applied, RGB out, clear errors for anything unreadable."""

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from captioner.errors import CaptionerError

if TYPE_CHECKING:
    import torch

MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb threshold; above it we refuse instead of warning

# What the Python API accepts as an image: a file, a PIL image, an (H, W, 3) uint8 array, or a (3, H, W) tensor
# (uint8, or float in [0, 1]).
ImageInput = Union[str, Path, Image.Image, np.ndarray, "torch.Tensor"]


def load_image(path: str | Path, size: int | None = None) -> Image.Image:
    """Open an image file as an RGB PIL image, or raise CaptionerError naming the file and the problem.

    `size`: the side the caller will resize to (an encoder's input size). A JPEG at least twice that on both
    sides is then decoded at the smallest 1/2, 1/4 or 1/8 scale that still covers it (`Image.draft`, libjpeg's
    scaled IDCT): a 4032×3024 phone photo for a 448-px encoder is decoded at 1008×756, 7× faster than whole,
    and its resized pixels are within a quarter of a grey level on average of those from the whole photo.
    """
    path = Path(path)
    if not path.is_file():
        raise CaptionerError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise CaptionerError(f"{path}: empty file")
    return _decode(path, str(path), size)


def load_image_bytes(data: bytes, name: str = "upload", size: int | None = None) -> Image.Image:
    """Decode an image held in memory (an upload) with the same guards as `load_image`; `name` labels errors."""
    if not data:
        raise CaptionerError(f"{name}: empty file")
    return _decode(io.BytesIO(data), name, size)


def _decode(source: Path | io.BytesIO, name: str, size: int | None = None) -> Image.Image:
    """Open, size-check, load and convert an image; any failure is a CaptionerError starting with `name`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise CaptionerError(f"{name}: image too large ({img.width}×{img.height} pixels)")
                if size:
                    img.draft(None, (size, size))  # JPEGs only; the mode is kept
                img.load()
                ImageOps.exif_transpose(img, in_place=True)  # a no-op without an orientation tag: no copy of the pixels
                return _to_rgb(img)
    except CaptionerError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CaptionerError(f"{name}: image too large (decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise CaptionerError(f"{name}: not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise CaptionerError(f"{name}: corrupt or truncated image ({e})") from None


def as_image_list(images: ImageInput | Sequence[ImageInput]) -> Sequence[ImageInput]:
    """One image (a path, a PIL image, an (H, W, 3) array or a (3, H, W) tensor) as a list of one; a sequence of
    images, a (B, 3, H, W) tensor or a (B, H, W, 3) array as it is. (A lone path string would otherwise be read as a
    sequence of one-letter paths.)"""
    if isinstance(images, (str, Path, Image.Image)) or getattr(images, "ndim", None) == 3:
        return [images]
    return images


def as_rgb_image(image: ImageInput, position: int = 0, size: int | None = None) -> Image.Image:
    """Any `ImageInput` as an RGB PIL image; arrays and tensors of another shape or type are a CaptionerError.

    Float tensors are scaled to 0..255 and rounded, exactly as the same picture saved as a file would be, so
    every form of one picture gets the same caption. `size` is `load_image`'s, for files.
    """
    if isinstance(image, (str, Path)):
        return load_image(image, size)
    if isinstance(image, Image.Image):
        return _to_rgb(image)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise CaptionerError(f"image {position}: a numpy image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        return Image.fromarray(image)
    import torch  # here, not at the top: reading image files needs no torch

    if isinstance(image, torch.Tensor):
        pixels = _tensor_to_uint8(image.detach().cpu(), position).permute(1, 2, 0).contiguous()  # (3, H, W) → (H, W, 3)
        return Image.fromarray(pixels.numpy())
    raise CaptionerError(f"image {position}: expected a path, PIL image, numpy array or tensor, got {type(image).__name__}")


def _tensor_to_uint8(tensor: "torch.Tensor", position: int) -> "torch.Tensor":
    """(3, H, W) uint8, or float in [0, 1] → (3, H, W) uint8."""
    import torch

    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise CaptionerError(f"image {position}: a tensor image must be (3, H, W), got {tuple(tensor.shape)}")
    if tensor.dtype.is_floating_point:
        if tensor.numel() and (tensor.min() < 0 or tensor.max() > 1):
            raise CaptionerError(f"image {position}: a float tensor image must hold values in [0, 1], "
                                 f"got {float(tensor.min()):.3g}..{float(tensor.max()):.3g}")
        return tensor.float().mul(255).round().byte()
    if tensor.dtype != torch.uint8:
        raise CaptionerError(f"image {position}: a tensor image must be uint8 or float in [0, 1], got {tensor.dtype}")
    return tensor


def input_size(transform: object) -> int | None:
    """The side an encoder's transform resizes images to (its `size`), for `load_image`; None for other callables."""
    size = getattr(transform, "size", None)
    return size if isinstance(size, int) else None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Palette/alpha images are composited on white; 16-bit greyscale is scaled to 8 bits; RGB is returned as it is."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")
