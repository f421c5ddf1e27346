"""Model soups (Wortsman et al. 2022): the uniform average of the weights of model files fine-tuned from one start.

Runs that leave the same starting model by different routes (another seed, baseline or auxiliary loss) stay in one
basin of the loss, so the average of their weights is itself a good model that combines what each run learnt:
the shipped captioner is the soup of eight self-critical runs, and it captions as well as a single run while its
words point at what they name like the runs trained with supervised attention (docs/RESULTS.md). Only
files that describe the same network can be averaged: same kind, vocabulary, answers, encoder and layer sizes; they
may differ in what only shaped their training loss (a supervised-attention weight, dropout), and the soup keeps
the first file's settings there.
"""

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from captioner.checkpoint import load_model_file, save_model_file
from captioner.config import EncoderConfig
from captioner.errors import CaptionerError
from captioner.models.caption_decoder import DecoderConfig
from captioner.models.vqa import VQAConfig

STATE_KEYS = ("encoder_state", "decoder_state", "model_state")  # weights to average, where a file has them
NOT_COMPARED = ("meta", "document_frequencies") + STATE_KEYS  # all else must be equal across the files
# model configs may differ in the fields that only shaped their training loss (the soup keeps the first file's)
LOSS_ONLY_FIELDS = {"decoder_config": DecoderConfig.TRAINING_ONLY, "model_config": VQAConfig.TRAINING_ONLY}
# settings a file written before a field existed leaves out: compared as their defaults
DEFAULTS = {"encoder": dataclasses.asdict(EncoderConfig())}


def average_model_files(paths: Sequence[str | Path], recipe: str | None = None) -> dict[str, Any]:
    """The payload of a model file whose weights are the mean of `paths`' weights; the rest is the first file's."""
    if len(paths) < 2:
        raise CaptionerError("averaging needs at least two model files")
    payloads = [load_model_file(p, None) for p in paths]
    first = payloads[0]
    for path, payload in zip(paths[1:], payloads[1:]):
        _check_same_model(paths[0], first, path, payload)
    soup = {k: v for k, v in first.items() if k not in STATE_KEYS}
    for key in STATE_KEYS:
        if key in first:
            soup[key] = _mean_state([p[key] for p in payloads], key, paths)
    soup["meta"] = _soup_meta(paths, payloads, recipe)
    return soup


def save_soup(out: str | Path, paths: Sequence[str | Path], recipe: str | None = None, force: bool = False) -> Path:
    """Average `paths` into the model file `out` (refusing to overwrite it without `force`)."""
    if Path(out).exists() and not force:
        raise CaptionerError(f"{out} already exists; pass --force to overwrite it")
    soup = average_model_files(paths, recipe)
    kind = soup.pop("format").split("/", 1)[1]
    soup.pop("format_version")
    return save_model_file(out, kind, soup, force=force)


def _check_same_model(path_a: str | Path, a: dict, path_b: str | Path, b: dict) -> None:
    for key in sorted(set(a) | set(b)):
        if key in NOT_COMPARED:
            continue
        if _network_part(key, a.get(key)) != _network_part(key, b.get(key)):
            raise CaptionerError(f"cannot average {path_b} with {path_a}: their {key} differ (only fine-tunes of one model average)")
    for key in STATE_KEYS:
        sa, sb = a.get(key), b.get(key)
        if (sa is None) != (sb is None) or (sa is not None and _shapes(sa) != _shapes(sb)):
            raise CaptionerError(f"cannot average {path_b} with {path_a}: their {key} tensors differ in names or shapes")


def _network_part(key: str, value: Any) -> Any:
    if isinstance(value, dict) and key in DEFAULTS:
        value = {**DEFAULTS[key], **value}
    ignored = LOSS_ONLY_FIELDS.get(key, ())
    return {k: v for k, v in value.items() if k not in ignored} if ignored and isinstance(value, dict) else value


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in state.items()}


def _mean_state(states: list[dict[str, torch.Tensor] | None], key: str, paths: Sequence[str | Path]) -> dict[str, torch.Tensor] | None:
    if states[0] is None:
        return None
    mean = {}
    for name, tensor in states[0].items():
        if tensor.is_floating_point():  # averaged in float32, stored in the files' own precision
            mean[name] = (torch.stack([s[name].float() for s in states]).mean(0)).to(tensor.dtype)
        elif all(torch.equal(s[name], tensor) for s in states):
            mean[name] = tensor
        else:
            raise CaptionerError(f"cannot average {key} {name}: an integer tensor that differs between {paths[0]} and another file")
    return mean


def _soup_meta(paths: Sequence[str | Path], payloads: list[dict], recipe: str | None) -> dict[str, Any]:
    ingredients = [{"file": Path(p).name, **{k: v for k, v in (q.get("meta") or {}).items() if k in ("recipe", "metrics")}} for p, q in zip(paths, payloads)]
    task = (payloads[0].get("meta") or {}).get("task")
    averaged = f"uniform average of the weights of {len(paths)} model files (a model soup)"
    return {"task": task, "recipe": f"{averaged}: {recipe}" if recipe else averaged, "ingredients": ingredients}
