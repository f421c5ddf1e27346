"""Attention correctness on data with object boxes: how much of a word's attention falls on the object it names."""

from collections.abc import Mapping, Sequence

from captioner.data.shapes import ShapeObject, grounded_word_boxes
from captioner.evaluation.attention import attention_correctness


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
