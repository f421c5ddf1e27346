"""Reading user images safely: EXIF orientation applied, RGB out, clear errors for anything unreadable."""

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from captioner.errors import CaptionerError

MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb threshold; above it we refuse instead of warning


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as an RGB PIL image, or raise CaptionerError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise CaptionerError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise CaptionerError(f"{path}: empty file")
    return _decode(path, str(path))


def load_image_bytes(data: bytes, name: str = "upload") -> Image.Image:
    """Decode an image held in memory (an upload) with the same guards as `load_image`; `name` labels errors."""
    if not data:
        raise CaptionerError(f"{name}: empty file")
    return _decode(io.BytesIO(data), name)


def _decode(source: Path | io.BytesIO, name: str) -> Image.Image:
    """Open, size-check, load and convert an image; any failure is a CaptionerError starting with `name`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise CaptionerError(f"{name}: image too large ({img.width}×{img.height} pixels)")
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except CaptionerError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CaptionerError(f"{name}: image too large (decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise CaptionerError(f"{name}: not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise CaptionerError(f"{name}: corrupt or truncated image ({e})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Palette/alpha images are composited on white; 16-bit greyscale is scaled to 8 bits."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")
