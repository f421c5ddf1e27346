"""Self-contained model files: weights, vocabulary, model config and encoder settings in one safe file.

They hold only tensors, strings, numbers, lists and dicts, so `torch.load(..., weights_only=True)` reads them
and a file carrying pickled code is refused. The encoder's pretrained weights come from the installed
package; only fine-tuned or randomly initialised encoders are stored.
"""

import dataclasses
from pathlib import Path
from typing import Any

import torch

from captioner.config import EncoderConfig, build_section
from captioner.encoders import ImageEncoder, encoder_from_config
from captioner.errors import CaptionerError
from captioner.files import write_atomic

FORMAT_VERSION = 1


def atomic_save(payload: dict, path: str | Path, force: bool = False) -> Path:
    """torch.save to a temporary file beside `path`, then rename; never overwrite without `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise CaptionerError(f"{path} already exists; pass --force to overwrite it")
    return write_atomic(path, lambda tmp: torch.save(payload, tmp))


def half_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors to float16 to halve the file; buffers of other types untouched."""
    return {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in state.items()}


def float_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def save_model_file(path: str | Path, kind: str, payload: dict[str, Any], force: bool = False) -> Path:
    return atomic_save({"format": f"captioner/{kind}", "format_version": FORMAT_VERSION, **payload}, path, force)


def load_model_file(path: str | Path, kind: str | None) -> dict[str, Any]:
    """Read a model file safely and check it is a `kind` model (any kind for None) of a format this version understands."""
    path = Path(path)
    if not path.is_file():
        raise CaptionerError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError for code, RuntimeError/EOFError for truncation
        reason = "it contains non-tensor objects (refused: loading could run code)" if "weights_only" in str(e) or "Unsupported global" in str(e) else f"unreadable ({e.__class__.__name__})"
        raise CaptionerError(f"{path} is not a usable captioner checkpoint: {reason}") from None
    if not isinstance(payload, dict) or not str(payload.get("format", "")).startswith("captioner/"):
        raise CaptionerError(f"{path} is not a captioner model file (a Lightning training checkpoint? export one with captioner train)")
    if kind is not None and payload["format"] != f"captioner/{kind}":
        raise CaptionerError(f"{path} is a {payload['format'].split('/')[1]} model, not a {kind} model")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CaptionerError(f"{path} has format version {payload.get('format_version')}; this captioner reads {FORMAT_VERSION}")
    return payload


def load_state_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path: str | Path) -> None:
    """load_state_dict that explains a mismatch (e.g. another vocabulary size) in one line."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(filter(None, [
            f"shape mismatch: {', '.join(wrong[:3])}" if wrong else "",
            f"missing: {', '.join(missing[:3])}" if missing else "",
            f"unexpected: {', '.join(unexpected[:3])}" if unexpected else "",
        ]))
        raise CaptionerError(f"{path}: {what} weights do not fit the model ({detail})")
    module.load_state_dict(float_state(state))


def encoder_payload(encoder: ImageEncoder, config: EncoderConfig) -> dict[str, Any]:
    """The encoder's part of a model file: its settings, and its weights only when the installed package
    cannot rebuild them (fine-tuned stages or no pretrained weights). Trained stages mark the file `fine_tuned`,
    so that a run that freezes them again keeps their weights."""
    settings = {**dataclasses.asdict(config), "fine_tuned": config.tuned}
    return {"encoder": settings, "encoder_state": half_state(encoder.state_dict()) if config.own_weights else None}


def encoder_from_payload(payload: dict[str, Any], path: str | Path) -> tuple[ImageEncoder, EncoderConfig]:
    """Rebuild the encoder `encoder_payload` described: pretrained weights from the package, else the file's."""
    config = build_section("checkpoint encoder", EncoderConfig, payload["encoder"])
    encoder = encoder_from_config(config, pretrained=payload["encoder_state"] is None and config.pretrained)
    if payload["encoder_state"] is not None:
        load_state_checked(encoder, payload["encoder_state"], "encoder", path)
    encoder.fine_tuned = config.tuned  # its grids are its own: caches of them name its weights (describe)
    return encoder, config
