"""Caption a whole evaluation set with a `Captioner` (each image once) and score it with the COCO suite."""

from collections.abc import Iterable

import torch

from captioner.inference import Caption, Captioner


@torch.no_grad()
def caption_batches(captioner: Captioner, batches: Iterable[dict], **options) -> dict[int, Caption]:
    """Batches from an eval-mode caption DataLoader (images or cached features) → {image_id: Caption} (text, words,
    attention maps); `options` are Captioner.caption_features' (beam_size, max_len, no_repeat_ngram_size)."""
    results: dict[int, Caption] = {}
    for batch in batches:
        if "features" in batch:
            features = batch["features"]
        else:
            features = captioner.encoder(batch["images"].to(captioner.device))
        captions = captioner.caption_features(features, **options)
        results.update({int(i): c for i, c in zip(batch["image_ids"], captions)})
    return results
