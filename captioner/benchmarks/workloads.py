"""Generated inputs for the benchmarks: photo-like JPEGs, COCO-shaped caption batches, feature caches, model files.

Everything is written in the project's real formats (COCO captions JSON, the feature cache layout of
`captioner.data.features`, `Captioner` model files), so the benchmarks time the real reading code.
"""

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from captioner.config import EncoderConfig
from captioner.data.features import describe_hash
from captioner.text import SPECIALS, Vocabulary

# Share of COCO training captions by word count (coco-mini train, 11,496 captions, clipped at max_caption_len=20):
# mean 10.5 words, so a batch of 64 is padded to ~20 steps while its captions average ~11.5.
COCO_WORD_COUNTS = {
    7: 0.007, 8: 0.144, 9: 0.220, 10: 0.215, 11: 0.157, 12: 0.104, 13: 0.061,
    14: 0.036, 15: 0.019, 16: 0.012, 17: 0.009, 18: 0.005, 19: 0.004, 20: 0.008,
}


def coco_like_captions(batch: int, vocab_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids with COCO's caption-length spread: captions (B, T+1) padded, lengths (B,) incl. <start>/<end>."""
    counts = torch.tensor(list(COCO_WORD_COUNTS))
    shares = torch.tensor(list(COCO_WORD_COUNTS.values()))
    lengths = counts[torch.multinomial(shares, batch, replacement=True, generator=generator)] + 2  # (B,)
    captions = torch.zeros(batch, int(lengths.max()), dtype=torch.long)  # (B, T+1), 0 = <pad>
    for row, n in enumerate(lengths.tolist()):
        captions[row, 0] = Vocabulary.start_id
        captions[row, 1 : n - 1] = torch.randint(len(SPECIALS), vocab_size, (n - 2,), generator=generator)
        captions[row, n - 1] = Vocabulary.end_id
    return captions, lengths


def write_photos(folder: Path, count: int, size: tuple[int, int] = (320, 240), seed: int = 0) -> dict[int, Path]:
    """JPEGs that compress like photos (smooth colour fields plus grain), COCO-mini sized; returns id → path."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    paths = {}
    for image_id in range(1, count + 1):
        coarse = Image.fromarray(rng.integers(0, 256, (height // 20, width // 20, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize(size, Image.BICUBIC)).astype(np.int16)  # (H, W, 3)
        grain = rng.integers(-12, 13, smooth.shape)
        path = folder / f"photo_{image_id:06d}.jpg"
        Image.fromarray((smooth + grain).clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths[image_id] = path
    return paths


def synthetic_words(count: int) -> list[str]:
    return [f"w{i:05d}" for i in range(count)]


def write_captions_json(path: Path, image_ids: list[int], vocab_words: int, seed: int = 0) -> Path:
    """A COCO captions file with one COCO-length caption of random words per image."""
    rng = np.random.default_rng(seed)
    words = synthetic_words(vocab_words)
    lengths = rng.choice(list(COCO_WORD_COUNTS), size=len(image_ids), p=_normalised(COCO_WORD_COUNTS))
    images = [{"id": i, "file_name": f"{i}.jpg"} for i in image_ids]
    annotations = [
        {"id": n, "image_id": i, "caption": " ".join(rng.choice(words, size=int(k)))}
        for n, (i, k) in enumerate(zip(image_ids, lengths), start=1)
    ]
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def write_feature_cache(folder: Path, image_ids: list[int], grid: tuple[int, int], seed: int = 0, chunk: int = 512) -> Path:
    """A feature cache in the layout `FeatureCache` reads (features.npy (N, L, C) float16, index.json, meta.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    L, C = grid
    rng = np.random.default_rng(seed)
    array = np.lib.format.open_memmap(folder / "features.npy", mode="w+", dtype=np.float16, shape=(len(image_ids), L, C))
    for start in range(0, len(image_ids), chunk):
        rows = min(chunk, len(image_ids) - start)
        array[start : start + rows] = rng.random((rows, L, C), dtype=np.float32).astype(np.float16)  # (rows, L, C)
    array.flush()
    del array
    description = {"name": "synthetic", "image_size": 0, "pool_size": None, "channels": C, "grid_size": [L, 1]}
    (folder / "index.json").write_text(json.dumps({str(i): row for row, i in enumerate(image_ids)}))
    meta = {"encoder": description, "hash": describe_hash(description), "images": len(image_ids), "failed": []}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def write_model_file(path: Path, encoder_config: EncoderConfig, decoder_sizes: dict, vocab_words: int) -> Path:
    """A `Captioner` model file: the configured encoder and an untrained decoder over a synthetic vocabulary."""
    from captioner.encoders import encoder_from_config
    from captioner.inference import Captioner
    from captioner.models.caption_decoder import DecoderConfig
    from captioner.models.decoders import build_decoder

    encoder = encoder_from_config(encoder_config)
    vocab = Vocabulary(synthetic_words(vocab_words))
    decoder = build_decoder(DecoderConfig(vocab_size=len(vocab), feature_dim=encoder.channels, **decoder_sizes))
    meta = {"note": "benchmark model: untrained decoder"}
    return Captioner(encoder, decoder, vocab, encoder_config, meta).save(path, force=True)


def _normalised(shares: dict[int, float]) -> list[float]:
    total = sum(shares.values())
    return [s / total for s in shares.values()]


def train_from_cache_probe(cache_dir: str, annotations: str, steps: int, batch_size: int, decoder_sizes: dict) -> dict:
    """Train the decoder for `steps` batches read through the real dataset and DataLoader; report this process's memory.

    Meant to run in a fresh process (its peak RSS is the whole process's): see the cache-memory benchmark.
    """
    from torch.utils.data import DataLoader

    from captioner.data.coco import CocoCaptions, read_json
    from captioner.data.collate import collate
    from captioner.data.features import FeatureCache
    from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
    from captioner.models.losses import caption_loss

    cache = FeatureCache(cache_dir)
    vocab = Vocabulary.build(a["caption"] for a in read_json(annotations)["annotations"])
    data = CocoCaptions(annotations, cache_dir, vocab=vocab, mode="train", features=cache)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, collate_fn=collate)
    grid = cache[cache.ids[0]].shape  # (L, C)
    decoder = CaptionDecoder(DecoderConfig(vocab_size=len(vocab), feature_dim=grid[1], **decoder_sizes)).train()
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=1e-3)
    peaks: dict[str, int] = {}
    done = 0
    while done < steps:
        for batch in loader:
            loss = caption_loss(decoder, decoder(batch["features"], batch["captions"]), batch["captions"])["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            peaks = {k: max(v, peaks.get(k, 0)) for k, v in rss_parts().items()}
            if done == steps:
                break
    return {"peak_rss_mib": peak_rss_mib(), "steps": done, **{f"peak_{k}_mib": v / 1024 for k, v in peaks.items()}}


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB.

    Linux: VmHWM, the high-water mark of this program's own memory. (ru_maxrss would also count the parent's
    memory at the moment it started this process: the kernel carries the high-water mark across fork and exec.)
    Elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
    """
    import resource
    import sys

    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def rss_parts() -> dict[str, int]:
    """Current anonymous and file-backed resident KiB from /proc (Linux); {} elsewhere."""
    status = Path("/proc/self/status")
    if not status.is_file():
        return {}
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
    return {name: int(fields[key].split()[0]) for name, key in (("anon", "RssAnon"), ("file", "RssFile")) if key in fields}
