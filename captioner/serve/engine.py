"""What the server runs: uploads → grids (cached) → captions or answers, in batches. Nothing here knows HTTP.

`prepare_*` runs on request threads (hashing, decoding, resizing); `caption_batch` / `ask_batch` run on the one
model thread, with one encoder pass for every image of the batch whose grid is not cached, then one batched
beam search (or one VQA forward).
"""

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import torch
from PIL import Image

from captioner.data.images import input_size, load_image_bytes
from captioner.encoders import ImageEncoder, encode_in_chunks
from captioner.errors import CaptionerError
from captioner.inference import CONTENT_REPEAT_PENALTY, Caption, Captioner
from captioner.pipeline import share_encoder_if_same
from captioner.vqa_inference import Answer, VQAAnswerer


@dataclass(frozen=True)
class DecodingOptions:
    """What a caption request may choose; requests with equal options share a batch."""

    beam_size: int = 3
    no_repeat_ngram_size: int = 3
    no_repeat_content_words: bool = True  # content_repeat_penalty: CONTENT_REPEAT_PENALTY when set, else 0
    max_len: int = 20


@dataclass
class ImageJob:
    """One uploaded image, ready for the model: its cached grid (L, C), or its pixels (3, S, S) to encode."""

    digest: str
    grid: torch.Tensor | None = None
    pixels: torch.Tensor | None = None


class GridCache:
    """Least-recently-used grids of recent uploads, keyed by (encoder, content hash), bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.bytes = max_bytes, 0
        self._grids: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()  # request threads read, the model thread writes

    def get(self, key: tuple[str, str]) -> torch.Tensor | None:
        with self._lock:
            grid = self._grids.get(key)
            if grid is not None:
                self._grids.move_to_end(key)
            return grid

    def put(self, key: tuple[str, str], grid: torch.Tensor) -> None:
        size = grid.numel() * grid.element_size()
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._grids:
                return
            self._grids[key] = grid
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, old = self._grids.popitem(last=False)
                self.bytes -= old.numel() * old.element_size()

    def __len__(self) -> int:
        return len(self._grids)


class Engine:
    """The loaded models, the grid cache, and one batch function per task."""

    def __init__(self, captioner: Captioner, answerer: VQAAnswerer | None = None, cache_bytes: int = 32 * 2**20) -> None:
        self.captioner, self.answerer = captioner, answerer
        self.cache = GridCache(cache_bytes)
        self.images_encoded = 0
        # one encoder module, one cache key: an image asked about after captioning is not re-encoded
        self.shared_encoder = answerer is not None and share_encoder_if_same(captioner, answerer)

    # -- request threads -------------------------------------------------------------------------------------------
    def prepare(self, data: bytes, task: str) -> ImageJob:
        """Bytes of an upload → a job for `task` ('caption' or 'ask'): the cached grid, else the encoder's pixels."""
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        encoder = self._encoder(task)
        grid = self.cache.get((self._encoder_key(task), digest))
        if grid is not None:
            return ImageJob(digest, grid=grid)
        transform = encoder.transform
        return ImageJob(digest, pixels=transform(decode_upload(data, input_size(transform))))  # (3, S, S)

    # -- the model thread ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def caption_batch(self, options: Hashable, jobs: list[ImageJob]) -> list[Caption]:
        """Captions for a batch of jobs sharing `options` (a DecodingOptions): one encoder pass, one beam search."""
        assert isinstance(options, DecodingOptions)
        grids = self.grids(jobs, "caption")  # (B, L, C)
        penalty = CONTENT_REPEAT_PENALTY if options.no_repeat_content_words else 0.0
        return self.captioner.caption_features(grids, options.beam_size, options.max_len, options.no_repeat_ngram_size,
                                               content_repeat_penalty=penalty)

    @torch.no_grad()
    def ask_batch(self, top_k: Hashable, jobs: list[tuple[ImageJob, str]]) -> list[Answer]:
        """Top answers for a batch of (image, question) jobs: one encoder pass, one VQA forward."""
        if self.answerer is None:
            raise CaptionerError("no VQA model is loaded")
        grids = self.grids([job for job, _ in jobs], "ask")  # (B, L, C)
        return self.answerer.ask_features(grids, [question for _, question in jobs], int(top_k))

    def grids(self, jobs: list[ImageJob], task: str) -> torch.Tensor:
        """(B, L, C) grids of the jobs: cached ones as they are, the others from one encoder pass (then cached)."""
        encoder = self._encoder(task)
        device = next(encoder.parameters()).device
        missing = [i for i, job in enumerate(jobs) if job.grid is None]
        if missing:
            pixels = torch.stack([jobs[i].pixels for i in missing]).to(device)  # (M, 3, S, S)
            encoded = encode_in_chunks(encoder, pixels)  # (M, L, C); on a CPU a few images at a time (faster there)
            self.images_encoded += len(missing)
            for i, grid in zip(missing, encoded):
                jobs[i].grid, jobs[i].pixels = grid, None
                self.cache.put((self._encoder_key(task), jobs[i].digest), grid.clone())  # a view would keep the whole batch alive
        # Stacked as the encoder lays its output out (channels-major: (B, C, L) transposed), so a batch computes
        # exactly what Captioner.caption computes for the same images: float sums depend on the memory layout.
        return torch.stack([job.grid.to(device).transpose(0, 1) for job in jobs]).transpose(1, 2)  # (B, C, L) → (B, L, C)

    # -- which encoder ---------------------------------------------------------------------------------------------
    def _encoder(self, task: str) -> ImageEncoder:
        if task == "ask":
            if self.answerer is None:
                raise CaptionerError("no VQA model is loaded: start the server with --vqa-checkpoint")
            return self.answerer.encoder
        return self.captioner.encoder

    def _encoder_key(self, task: str) -> str:
        return "ask" if task == "ask" and not self.shared_encoder else "caption"


def decode_upload(data: bytes, size: int | None = None) -> Image.Image:
    """Upload bytes → RGB image, through the same guards as image files (a CaptionerError names the problem);
    `size` as `load_image`'s (None: the whole picture, as figures draw it)."""
    return load_image_bytes(data, "uploaded image", size)
