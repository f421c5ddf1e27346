"""Caption a whole evaluation set with a `Captioner` (each image once) and score it with the COCO suite."""

from collections.abc import Callable, Iterable

import torch

from captioner.inference import Caption, Captioner


@torch.no_grad()
def caption_batches(captioner: Captioner, batches: Iterable[dict], on_progress: Callable[[int], object] | None = None,
                    **options) -> dict[int, Caption]:
    """Batches from an eval-mode caption DataLoader (images or cached features) → {image_id: Caption} (text, words,
    attention maps); `options` are Captioner.caption_features' (beam_size, max_len, no_repeat_ngram_size);
    `on_progress(n)` hears of every n images done."""
    results: dict[int, Caption] = {}
    for batch in batches:
        if "image_ids" in batch:  # else every image of the batch was unreadable
            features = batch["features"] if "features" in batch else captioner.encode(batch["images"])
            captions = captioner.caption_features(features, **options)
            results.update({int(i): c for i, c in zip(batch["image_ids"], captions)})
        if on_progress is not None:
            on_progress(len(batch.get("image_ids", [])) + len(batch.get("skipped", [])))
    return results
