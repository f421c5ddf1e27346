"""Attention correctness on data with object boxes: how much of a word's attention falls on the object it names."""

from collections.abc import Mapping, Sequence

import numpy as np

from captioner.data.boxes import WordRegions
from captioner.data.shapes import ShapeObject, grounded_word_boxes
from captioner.evaluation.attention import attention_correctness, coverage_mass

FULL_IMAGE_SHARE = 0.95  # a word whose boxes fill this much of the image has nothing to find: skipped
MIN_PER_CATEGORY = 20  # per-category rows only for categories with more grounded words than this


def caption_grounding(
    captions: Mapping[int, "Caption"],  # noqa: F821  (captioner.inference.Caption)
    objects: Mapping[int, Sequence[ShapeObject]],
    grid_size: tuple[int, int],
    image_sizes: Mapping[int, tuple[int, int]],
) -> dict:
    """Mean attention mass inside the named object's box over every grounded word, beside uniform attention's."""
    items = [
        (caption.alphas[position], grid_size, box, image_sizes[image_id])
        for image_id, caption in captions.items()
        for position, box in grounded_word_boxes(caption.words, objects[image_id])
    ]
    return attention_correctness(items)


def word_grounding(
    captions: Mapping[int, "Caption"],  # noqa: F821  (captioner.inference.Caption: words and alphas (T, L))
    regions: WordRegions,
    max_share: float = FULL_IMAGE_SHARE,
    min_per_category: int = MIN_PER_CATEGORY,
) -> dict:
    """For each generated word naming a category with boxes in its image: the word's attention mass inside the
    union of those boxes against uniform attention's. Words whose boxes fill ≥ `max_share` of the image are
    skipped (nothing to find). Per category only where more than `min_per_category` words were grounded."""
    found: dict[str, list[tuple[float, float]]] = {}
    skipped = 0
    for image_id, caption in captions.items():
        for position, category, region in regions.for_words(image_id, caption.words):
            uniform = float(region.mean())  # uniform attention's mass: the boxes' area share of the grid
            if uniform >= max_share:
                skipped += 1
                continue
            found.setdefault(category, []).append((coverage_mass(caption.alphas[position], region), uniform))
    every = [pair for pairs in found.values() for pair in pairs]
    labelled = sum(regions.boxes.get(i) is not None for i in captions)
    per_category = {c: _summary(pairs) for c, pairs in sorted(found.items()) if len(pairs) > min_per_category}
    return {**_summary(every), "labelled_images": labelled, "skipped_whole_image": skipped, "per_category": per_category}


def _summary(pairs: list[tuple[float, float]]) -> dict:
    """Mean mass, mean uniform share, their ratio, the share of words beating uniform and the count; n = 0 → None."""
    if not pairs:
        return {"n": 0, "mean_mass": None, "mean_uniform": None, "ratio": None, "beat_uniform": None}
    mass, uniform = np.array(pairs).T  # (2, n) → two (n,)
    return {
        "n": len(pairs),
        "mean_mass": float(mass.mean()),
        "mean_uniform": float(uniform.mean()),
        "ratio": float(mass.mean() / uniform.mean()),
        "beat_uniform": float((mass > uniform).mean()),
    }


def format_grounding(result: dict) -> str:
    """One line per row: all words, then each category with enough words."""
    rows = [("all grounded words", result)] + list(result["per_category"].items())
    lines = [f"grounding ({result['labelled_images']} labelled images, {result['skipped_whole_image']} words skipped: boxes fill the image)"]
    for name, row in rows:
        if row["n"] == 0:
            lines.append(f"  {name}: n = 0 (no generated word names a category with boxes in its image)")
        else:
            lines.append(f"  {name}: mass {row['mean_mass']:.3f} vs uniform {row['mean_uniform']:.3f} ({row['ratio']:.2f}×), "
                         f"{row['beat_uniform']:.0%} beat uniform, n = {row['n']}")
    return "\n".join(lines)
