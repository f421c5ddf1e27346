"""captioner: Show, Attend and Tell captioning and attention VQA on pretrained CNN grids."""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Heavy imports (torch, Lightning) are deferred so `captioner --help` stays instant.
_LAZY = {"Captioner": "captioner.inference", "build_encoder": "captioner.encoders", "Vocabulary": "captioner.text",
         "keep_freed_memory": "captioner.allocator"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'captioner' has no attribute {name!r}")
