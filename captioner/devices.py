"""Choosing where models run: `auto` (CUDA, then Apple's MPS, else CPU) or a named device that must exist."""

import torch

from captioner.errors import CaptionerError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps' → a torch.device that exists here, else a one-line CaptionerError."""
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CaptionerError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise CaptionerError(f"device {name!r} requested but no CUDA GPU is available here; use --device cpu or auto")
        if device.index is not None and device.index >= count:
            raise CaptionerError(f"device {name!r} requested but only {count} CUDA GPU(s) exist (cuda:0..cuda:{count - 1})")
    elif device.type == "mps" and not _mps_available():
        raise CaptionerError(f"device {name!r} requested but Apple's MPS backend is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise CaptionerError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device
