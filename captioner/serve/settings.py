"""The server's settings: batching, limits on what clients may send, and the grid cache."""

import os
from dataclasses import dataclass

MIB = 2**20


@dataclass(frozen=True)
class ServeSettings:
    """Everything `captioner serve` lets a user tune; the defaults are the issue's."""

    max_batch: int = 16  # requests run through the model together at most
    max_wait_ms: float = 10.0  # how long a request waits for others to join its batch
    max_upload_mb: float = 10.0  # larger uploads get a 413
    max_question_chars: int = 200  # longer questions get a 400
    max_beam: int = 10  # largest beam a request may ask for
    top_k: int = 5  # answers returned by /api/ask
    decode_threads: int = max(2, os.cpu_count() or 1)  # uploads decoded (and figures drawn) at once
    grid_cache_mb: float = 32.0  # feature grids of recent uploads kept for reuse (0: none)
    caption_model: str = "captioner"  # names shown by /health and the page
    vqa_model: str | None = None

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.decode_threads < 1 or self.max_wait_ms < 0 or self.max_upload_mb <= 0 or self.grid_cache_mb < 0:
            raise ValueError(f"impossible serve settings: {self}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MIB)

    @property
    def max_body_bytes(self) -> int:
        """A request body may hold the upload plus the multipart framing and the small form fields."""
        return self.max_upload_bytes + 64 * 1024

    @property
    def grid_cache_bytes(self) -> int:
        return int(self.grid_cache_mb * MIB)
