"""Feature cache: a frozen encoder's grids, stored once as float16 in one .npy file, keyed by image id.

Layout of a cache folder: `features.npy` (N, L, C) float16, `index.json` {image_id: row}, `meta.json` (the
encoder's description and its hash, and whether the photos were mirrored left ↔ right, a training augmentation).
Reading fetches one row at a time with a positioned read: no memory map, so a process's memory stays O(batch)
however large the cache (pages of a map would count towards its RSS until the kernel reclaims them), and the
object pickles cheaply into DataLoader workers.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from captioner.data.image_files import ImageFiles, keep_readable
from captioner.encoders import ImageEncoder, description_differences, encode_in_chunks
from captioner.errors import CaptionerError


def describe_hash(description: dict) -> str:
    return hashlib.sha1(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]


class FeatureCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.meta = json.loads((self.path / "meta.json").read_text())
            self._index = {int(k): v for k, v in json.loads((self.path / "index.json").read_text()).items()}
        except FileNotFoundError:
            raise CaptionerError(f"{self.path} is not a feature cache (run captioner extract-features)") from None
        except json.JSONDecodeError as e:
            raise CaptionerError(f"{self.path}: corrupt feature cache metadata ({e})") from None
        self._file = None  # opened on first read, in whichever process reads

    def _open(self):
        """The .npy file and where its rows start; each row is one (L, C) grid."""
        if self._file is None:
            self._file = open(self.path / "features.npy", "rb", buffering=0)
            version = np.lib.format.read_magic(self._file)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(self._file)
            self._row_shape, self._dtype = shape[1:], np.dtype(dtype)
            self._row_bytes = int(np.prod(self._row_shape)) * self._dtype.itemsize
            self._data_start = self._file.tell()
        return self._file

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None}  # workers open their own handle

    def __del__(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()

    @property
    def ids(self) -> list[int]:
        return list(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, image_id: int) -> bool:
        return image_id in self._index

    def __getitem__(self, image_id: int) -> np.ndarray:
        """(L, C) float16 grid of one image."""
        file = self._open()
        file.seek(self._data_start + self._index[image_id] * self._row_bytes)
        row = bytearray(self._row_bytes)  # writable, so torch.from_numpy needs no copy
        if file.readinto(row) != self._row_bytes:
            raise CaptionerError(f"{self.path / 'features.npy'} is truncated; re-run captioner extract-features --force")
        return np.frombuffer(row, dtype=self._dtype).reshape(self._row_shape)  # (L, C)

    @property
    def mirrored(self) -> bool:
        """Whether these are the grids of the photos mirrored left ↔ right (`extract-features --mirror`)."""
        return bool(self.meta.get("mirrored", False))

    def check_compatible(self, description: dict, mirrored: bool = False) -> None:
        """Refuse a cache made by another encoder, preprocessing or (fine-tuned) weights, naming what differs, and
        a cache of mirrored photos where the photos themselves are meant (or the reverse)."""
        if self.mirrored != mirrored:
            made = "of mirrored photos (extract-features --mirror)" if self.mirrored else "of unmirrored photos"
            wanted = "data.mirror_features_dir" if mirrored else "the photos' own grids"
            raise CaptionerError(f"feature cache {self.path} holds the grids {made}; {wanted} needs the other kind")
        cached = self.meta["encoder"]
        if describe_hash(cached) == describe_hash(description):
            return
        diffs = description_differences(cached, description)
        how = " --checkpoint with this model file (its fine-tuned encoder)" if cached.get("weights") != description.get("weights") else ""
        raise CaptionerError(
            f"feature cache {self.path} is stale for this model ({'; '.join(diffs)}); re-run captioner extract-features{how}"
        )


@torch.inference_mode()
def extract_features(
    encoder: ImageEncoder,
    images: dict[int, Path],
    out_dir: str | Path,
    batch_size: int = 32,
    num_workers: int = 0,
    overwrite: bool = False,
    on_progress: Callable[[int], object] | None = None,
    mirror: bool = False,
) -> tuple[FeatureCache, dict]:
    """Run the frozen encoder once over `images` (id → path) on the encoder's device; returns the cache and stats
    (images/s, failures). `on_progress(n)` hears of every n images done. `mirror` caches the grids of the photos
    mirrored left ↔ right (the preprocessing is symmetric, so mirroring its output mirrors the photo)."""
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise CaptionerError(f"{out} already exists; pass --force to overwrite the feature cache")
    encoder.eval()
    items = sorted(images.items())
    tmp = Path(tempfile.mkdtemp(dir=out.parent if out.parent.exists() else None, prefix=f".{out.name}."))
    try:  # an interrupted run (Ctrl-C, an error) leaves no half-written cache of up to gigabytes behind
        written, failures, seconds = _encode_into(tmp, encoder, items, batch_size, num_workers, on_progress, mirror)
        _write_meta(tmp, encoder, items, written, failures, mirror)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    stats = {"images": len(written), "failed": failures, "seconds": seconds, "images_per_s": len(written) / max(seconds, 1e-9)}
    return FeatureCache(out), stats


def _encode_into(folder: Path, encoder: ImageEncoder, items: list, batch_size: int, num_workers: int,
                 on_progress: Callable[[int], object] | None, mirror: bool) -> tuple[list[int], list[str], float]:
    """Encode every image into folder/features.npy; returns the rows written, the failures and the seconds taken."""
    L, C = encoder.num_locations, encoder.channels
    array = np.lib.format.open_memmap(folder / "features.npy", mode="w+", dtype=np.float16, shape=(len(items), L, C))
    device = next(encoder.parameters()).device
    loader = DataLoader(ImageFiles([path for _, path in items], encoder.transform), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=keep_readable, pin_memory=device.type == "cuda")
    written, failures, start = [], [], time.perf_counter()
    for rows, pixels, errors in loader:
        failures += [reason for _, reason in errors]
        if pixels is not None:
            pixels = pixels.flip(-1) if mirror else pixels  # (b, 3, S, S), columns reversed
            array[rows] = encode_in_chunks(encoder, pixels.to(device)).cpu().numpy().astype(np.float16)  # (b, L, C)
            written += rows
        if on_progress is not None:
            on_progress(len(rows) + len(errors))
    array.flush()
    return written, failures, time.perf_counter() - start


def _write_meta(folder: Path, encoder: ImageEncoder, items: list, written: list[int], failures: list[str],
                mirror: bool) -> None:
    description = encoder.describe()
    index = {str(items[row][0]): row for row in written}
    (folder / "index.json").write_text(json.dumps(index))
    meta = {"encoder": description, "hash": describe_hash(description), "images": len(written), "failed": failures,
            "mirrored": mirror}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
