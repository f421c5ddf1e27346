"""One collate function for every task: stacks fixed-size tensors, pads token sequences, lists the rest."""

from collections.abc import Callable

import torch
from torch.nn.utils.rnn import pad_sequence


def _stack(name: str, dtype: torch.dtype | None = None) -> Callable[[list], dict]:
    def collect(values: list) -> dict:
        stacked = torch.stack([torch.as_tensor(v) for v in values])
        return {name: stacked.to(dtype) if dtype else stacked}

    return collect


def _pad(name: str, lengths: str, mask: str) -> Callable[[list], dict]:
    def collect(values: list) -> dict:
        padded = pad_sequence(values, batch_first=True, padding_value=0)  # (B, T_max), 0 = <pad>
        sizes = torch.tensor([len(v) for v in values])
        return {name: padded, lengths: sizes, mask: torch.arange(padded.size(1)) < sizes.unsqueeze(1)}

    return collect


def stack_grounding(targets: list[list[torch.Tensor]], steps: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, per reference (T_i, L) word regions (CocoCaptions' "grounding") → (R, steps, L) zero-padded in
    the order of the references, and the (R, steps) mask of the words that have a region. A caption cut to
    `max_len` words keeps the rows of those words; its <end> row names nothing."""
    rows = [t[: min(len(t) - 1, max_len, steps)] for per_image in targets for t in per_image]  # words only
    padded = rows[0].new_zeros(len(rows), steps, rows[0].size(-1))  # (R, steps, L)
    for r, t in enumerate(rows):
        padded[r, : len(t)] = t
    return padded, padded.sum(dim=-1) > 0


def _ids(name: str) -> Callable[[list], dict]:
    return lambda values: {name: torch.tensor(values, dtype=torch.long)}


# sample key → how its values become batch entries
COLLATORS: dict[str, Callable[[list], dict]] = {
    "image": _stack("images"),
    "features": _stack("features", torch.float32),  # caches hold float16
    "target": _stack("targets", torch.float32),
    "caption": _pad("captions", "lengths", "mask"),
    "question": _pad("questions", "question_lengths", "question_mask"),
    "image_id": _ids("image_ids"),
    "question_id": _ids("question_ids"),
    "mirrored": lambda values: {"mirrored": torch.tensor(values, dtype=torch.bool)},
}


def collate(samples: list[dict]) -> dict:
    """List of sample dicts → batch dict (see COLLATORS); unknown keys become plain lists under the same name.

    Samples of unreadable images ({"skipped": reason}) are left out; their reasons travel in batch["skipped"].
    """
    skipped = [s["skipped"] for s in samples if "skipped" in s]
    samples = [s for s in samples if "skipped" not in s]
    batch: dict = {"skipped": skipped} if skipped else {}
    if not samples:
        return batch
    for key in samples[0]:
        values = [s[key] for s in samples]
        batch.update(COLLATORS[key](values) if key in COLLATORS else {key: values})
    return batch


VISUAL_KEYS = ("image", "features")


def collate_images_once(samples: list[dict]) -> dict:
    """collate, but each distinct image's pixels or grid stacked once (rows in order of first appearance), with
    batch["image_index"] (B,) giving each sample's row: for tasks with several samples per image (VQA questions)."""
    first: dict[int, dict] = {}
    for sample in samples:
        if "skipped" not in sample:
            first.setdefault(sample["image_id"], sample)
    batch = collate([{k: v for k, v in s.items() if k not in VISUAL_KEYS} for s in samples])
    if first:
        batch.update(collate([{k: s[k] for k in VISUAL_KEYS if k in s} for s in first.values()]))  # (N, ...)
        row = {image_id: r for r, image_id in enumerate(first)}
        batch["image_index"] = torch.tensor([row[i] for i in batch["image_ids"].tolist()])  # (B,)
    return batch
