"""The core benchmarks: decoder training, beam search, feature extraction, the feature cache, cold start.

Each is registered in `captioner.benchmarks.core.BENCHMARKS` and returns ratios measured side by side.
"""

import json
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from captioner.benchmarks import workloads
from captioner.benchmarks.core import BENCHMARKS, Row, Settings, Target
from captioner.benchmarks.harness import cli_defaults, quiet_lightning, race, run_python
from captioner.benchmarks.tutorial_decoder import TutorialDecoder, tutorial_training_step
from captioner.config import EncoderConfig, RunConfig
from captioner.data.features import extract_features
from captioner.data.images import load_image
from captioner.encoders import ImageEncoder, encode_in_chunks, encoder_from_config
from captioner.errors import CaptionerError
from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
from captioner.models.decoding import generate
from captioner.models.losses import caption_loss

CONFIGS = Path(__file__).resolve().parents[2] / "configs"  # the YAML configs of a source checkout


# -- 1. decoder training ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecoderSize:
    label: str
    batch: int = 64
    locations: int = 49  # L: 7×7 grid of EfficientNet-Lite0 at 224 px
    channels: int = 1280  # C
    vocab: int = 2000
    embed: int = 256
    hidden: int = 512
    attention: int = 256
    memory: int | None = None  # ours only: the grid projected to this size once per image

    def config(self) -> DecoderConfig:
        return DecoderConfig(vocab_size=self.vocab, feature_dim=self.channels, embed_dim=self.embed,
                             hidden_dim=self.hidden, attention_dim=self.attention, memory_dim=self.memory)

    def describe(self) -> str:
        memory = f", memory {self.memory}" if self.memory else ""
        return (f"{self.label}: B={self.batch}, L={self.locations}, C={self.channels}, V={self.vocab}, "
                f"E={self.embed}, H={self.hidden}, A={self.attention}{memory}")


CAPTIONS_PER_IMAGE = 5


def shipped_size() -> DecoderSize:
    """The sizes configs/caption_coco_mini.yaml trains the shipped model with (its grid from its encoder)."""
    config = _run_config("caption_coco_mini.yaml", [])
    grid = encoder_from_config(config.encoder, pretrained=False).grid_size
    m = config.model
    return DecoderSize("shipped config (configs/caption_coco_mini.yaml)", batch=config.data.batch_size * CAPTIONS_PER_IMAGE,
                       locations=grid[0] * grid[1], embed=m.embed_dim, hidden=m.hidden_dim,
                       attention=m.attention_dim, memory=m.memory_dim)


def decoder_sizes(quick: bool) -> list[DecoderSize]:
    if quick:
        return [DecoderSize("quick", batch=8, locations=16, channels=32, vocab=60, embed=16, hidden=32, attention=16)]
    shipped = shipped_size()
    tutorial = DecoderSize("the tutorial's sizes", batch=64, vocab=3000, embed=512, hidden=512, attention=256, memory=shipped.memory)
    return [shipped, tutorial, replace(tutorial, label="attention 512", batch=32, attention=512)]


@BENCHMARKS.register("decoder-training")
def decoder_training(settings: Settings) -> list[Row]:
    """Captions/s of one training step (forward, masked cross-entropy + doubly stochastic penalty, backward, Adam)
    of `CaptionDecoder` vs the most-read tutorial's decoder design at the same sizes.

    Same random batch of COCO-length captions (mean 10.5 words, clipped at 20), five per image, for both; ours
    reads each image's grid once for its captions, as our training batches are built. The tutorial design
    (`captioner/benchmarks/tutorial_decoder.py`) sorts by length and shrinks the batch every step but re-projects
    the grid for attention at every step and applies its output layer step by step; ours projects once per image
    (into a smaller memory where configured), hoists the embeddings' share of the LSTM gates out of the loop,
    reads h_{t-1} with one fused matrix multiply per step, reads each image's memory once per step for all its
    captions, and applies the output layer once over the real steps; its backward through time is hand-written
    (each weight gradient one product over all steps, the attention energies recomputed in cache-sized blocks
    instead of kept). Ratio = ours / tutorial.
    """
    return [_decoder_row(size, settings.quick) for size in decoder_sizes(settings.quick)]


def _decoder_row(size: DecoderSize, quick: bool) -> Row:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    ours = CaptionDecoder(size.config()).train()
    tutorial = TutorialDecoder(size.vocab, size.channels, size.embed, size.hidden, size.attention).train()
    images = torch.randn(-(-size.batch // CAPTIONS_PER_IMAGE), size.locations, size.channels, generator=generator)  # (I, L, C)
    owners = torch.arange(size.batch) // CAPTIONS_PER_IMAGE  # (B,): five captions per image, as COCO has
    features = images[owners]  # (B, L, C): the tutorial's dataset hands every caption its own copy of the grid
    captions, lengths = workloads.coco_like_captions(size.batch, size.vocab, generator)  # (B, T+1), (B,)
    our_optimizer, tutorial_optimizer = torch.optim.Adam(ours.parameters()), torch.optim.Adam(tutorial.parameters())

    def ours_step() -> None:
        loss = caption_loss(ours, ours(images, captions, owners=owners), captions)["loss"]
        our_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        our_optimizer.step()

    seconds = race({"ours": ours_step, "tutorial": lambda: tutorial_training_step(tutorial, tutorial_optimizer, features, captions, lengths)},
                   repeats=1 if quick else 5)
    per_s = {side: size.batch / s for side, s in seconds.items()}
    note = f"batch padded to {captions.size(1) - 1} steps, mean caption {float(lengths.float().mean()) - 1:.1f} steps"
    return Row("decoder-training", size.describe(), per_s["ours"], per_s["tutorial"], "captions/s",
               per_s["ours"] / per_s["tutorial"], Target(True, 3.0), note)


# -- 2. beam search ----------------------------------------------------------------------------------------------------
@BENCHMARKS.register("beam-search")
def beam_search_batching(settings: Settings) -> list[Row]:
    """Captions/s of batched beam search (32 images × 3 beams in one batch) vs the same search one image at a time.

    The shipped decoder sizes (configs/caption_coco_mini.yaml: its encoder's grid, memory, attention, embedding and
    hidden sizes), untrained, on random grids: no caption ends early, so every image runs all 20 steps on both
    sides. Both sides run the same code: the first step on one row per image, then k rows per image that read
    one copy of its memory. Ratio = batched / one at a time.
    """
    size = decoder_sizes(settings.quick)[0]
    batch, beam, max_len = (4, 2, 5) if settings.quick else (32, 3, 20)
    torch.manual_seed(0)
    decoder = CaptionDecoder(size.config()).eval()
    features = torch.randn(batch, size.locations, size.channels)  # (B, L, C)

    def batched() -> None:
        generate(decoder, features, "beam", beam_size=beam, max_len=max_len)

    def one_at_a_time() -> None:
        for image in range(batch):
            generate(decoder, features[image : image + 1], "beam", beam_size=beam, max_len=max_len)

    seconds = race({"batched": batched, "single": one_at_a_time}, repeats=1 if settings.quick else 3)
    per_s = {side: batch / s for side, s in seconds.items()}
    case = f"batch {batch}, beam {beam}, max_len {max_len}, L={size.locations}, C={size.channels}, V={size.vocab}"
    ratio = per_s["batched"] / per_s["single"]
    return [Row("beam-search", case, per_s["batched"], per_s["single"], "captions/s", ratio, Target(True, 6.0))]


# -- 3. feature extraction -----------------------------------------------------------------------------------------
@BENCHMARKS.register("feature-extraction")
def feature_extraction(settings: Settings) -> list[Row]:
    """Images/s of `extract_features` (JPEG files → DataLoader decoding → frozen encoder → float16 cache) vs the
    bare encoder forward on the same images already decoded.

    320 generated photo-like 320×240 JPEGs (COCO-mini's size) at 224 px through EfficientNet-Lite0, in batches
    of the `captioner extract-features` default; its default worker count and no workers (DataLoader workers
    run one thread each, as torch sets them). Ten batches, because with workers the encoder waits while the
    first batch is decoded: with 3 batches that wait was a third of the run, not what a real cache build sees.
    Ratio = extract / bare.
    """
    quick = settings.quick
    encoder_config = EncoderConfig(name="tiny_cnn", pretrained=False, image_size=64) if quick else EncoderConfig()
    images = workloads.write_photos(settings.workdir / "photos", 16 if quick else 320)
    encoder = encoder_from_config(encoder_config).eval()
    pixels = torch.stack([encoder.transform(load_image(path)) for path in images.values()])  # (N, 3, S, S)
    defaults = cli_defaults("extract_features", "batch_size", "workers")
    batch, out = defaults["batch_size"], settings.workdir / "cache"
    _encode_all(encoder, pixels[:batch])  # warm-up: first-call allocations
    rows = []
    for workers in sorted({defaults["workers"], 0}, reverse=True):
        sides = {
            "extract": lambda: _extract(encoder, images, out, batch, workers),
            "bare": lambda: _encode_all(encoder, pixels, batch),
        }
        seconds = race(sides, repeats=1 if quick else 2, warmup=0)
        per_s = {side: len(images) / s for side, s in seconds.items()}
        case = f"{len(images)} JPEGs, {encoder.name} at {encoder.image_size} px, batch {batch}, {workers} workers" + (
            " (CLI default)" if workers == defaults["workers"] else "")
        rows.append(Row("feature-extraction", case, per_s["extract"], per_s["bare"], "images/s",
                        per_s["extract"] / per_s["bare"], Target(True, 0.8)))
    return rows


def _extract(encoder: ImageEncoder, images: dict[int, Path], out: Path, batch: int, workers: int) -> None:
    extract_features(encoder, images, out, batch, workers, overwrite=True)


@torch.inference_mode()
def _encode_all(encoder: ImageEncoder, pixels: torch.Tensor, batch: int = 32) -> None:
    for start in range(0, pixels.size(0), batch):
        encode_in_chunks(encoder, pixels[start : start + batch])  # (b, L, C), in the chunks extraction encodes


# -- 4. training epoch from the cache ----------------------------------------------------------------------------
@BENCHMARKS.register("cache-epoch")
def cache_epoch(settings: Settings) -> list[Row]:
    """Seconds for one training epoch from images through the frozen encoder vs from a feature cache, by the real
    `captioner.training.runner.train`.

    A generated shapes set (make-shapes, 80 images, 128 px) with configs/caption_shapes.yaml (EfficientNet-Lite0
    at 224 px, frozen); each run is one epoch including validation and start-up (config, vocabulary, Trainer,
    model export). The cache is built beforehand by `extract_features`; that one-off cost is in the note.
    Ratio = images / cache (the speed-up).
    """
    from captioner.training.runner import train

    from_images, from_cache, count, extraction = _shapes_runs(settings)
    with quiet_lightning():
        seconds = race({"images": lambda: train(from_images, force=True), "cache": lambda: train(from_cache, force=True)},
                       repeats=1, warmup=0)
    encoder = from_images.encoder
    case = f"{count} shapes images ({from_images.data.batch_size}/batch), {encoder.name} at {encoder.image_size} px, 1 epoch"
    note = f"building the cache took {extraction:.1f} s once ({count} images)"
    return [Row("cache-epoch", case, seconds["cache"], seconds["images"], "s", seconds["images"] / seconds["cache"], None, note)]


def _shapes_runs(settings: Settings) -> tuple[RunConfig, RunConfig, int, float]:
    """Generated shapes data, its feature cache, and the two run configs: (from images, from cache, images, cache seconds)."""
    from captioner.data.coco import read_json
    from captioner.data.shapes import make_shapes

    config_file, count, size = ("caption_tiny.yaml", 24, 64) if settings.quick else ("caption_shapes.yaml", 80, 128)
    shapes = make_shapes(settings.workdir / "shapes", count, seed=0, size=size)
    common = [f"data.train_annotations={shapes.captions['train']}", f"data.val_annotations={shapes.captions['val']}",
              f"data.images_dir={shapes.images}", "trainer.max_epochs=1", "trainer.logger=none",
              "trainer.progress_bar=false", "trainer.accelerator=cpu"]
    from_images = _run_config(config_file, [*common, f"trainer.out_dir={settings.workdir / 'from-images'}",
                                            "data.features_dir=null"])  # the shapes config names a cache of its own
    files = {image["id"]: shapes.images / image["file_name"]
             for split in shapes.captions.values() for image in read_json(split)["images"]}
    start = time.perf_counter()
    _extract(encoder_from_config(from_images.encoder).eval(), files, settings.workdir / "cache", 32, 0)
    extraction = time.perf_counter() - start
    from_cache = _run_config(config_file, [*common, f"trainer.out_dir={settings.workdir / 'from-cache'}",
                                           f"data.features_dir={settings.workdir / 'cache'}"])
    return from_images, from_cache, count, extraction


def _run_config(name: str, overrides: list[str]) -> RunConfig:
    from captioner.config import load_config

    if not (CONFIGS / name).is_file():
        raise CaptionerError(f"the cache-epoch benchmark needs {CONFIGS / name} (a source checkout)")
    return load_config(CONFIGS / name, overrides)


# -- 5. cold start of the caption command ---------------------------------------------------------------------------
BARE_ENCODER_SCRIPT = """
import sys
import torch
from PIL import Image
from captioner.encoders import build_encoder
image, name, pretrained, size = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]) or None
encoder = build_encoder(name, pretrained=pretrained, image_size=size).eval()
with torch.inference_mode():
    encoder(encoder.transform(Image.open(image).convert("RGB")).unsqueeze(0))
"""


def caption_model(settings: Settings) -> tuple[Path, str]:
    """The caption model a benchmark runs, and how to name it: --checkpoint, else the shipped one (not with
    --quick), else a model file with an untrained decoder of the shipped sizes (tiny_cnn at 64 px with --quick)."""
    from captioner.inference import SHIPPED_CHECKPOINT

    if settings.checkpoint is not None:
        return settings.checkpoint, f"model file {settings.checkpoint}"
    if SHIPPED_CHECKPOINT.is_file() and not settings.quick:
        return SHIPPED_CHECKPOINT, "shipped checkpoint"
    encoder_config = EncoderConfig(name="tiny_cnn", pretrained=False, image_size=64) if settings.quick else EncoderConfig()
    size = decoder_sizes(settings.quick)[0]
    sizes = {"embed_dim": size.embed, "hidden_dim": size.hidden, "attention_dim": size.attention, "memory_dim": size.memory}
    model = workloads.write_model_file(settings.workdir / "model.pt", encoder_config, sizes, size.vocab)
    return model, "model file with an untrained decoder (no shipped checkpoint yet)"


@BENCHMARKS.register("caption-cold-start")
def caption_cold_start(settings: Settings) -> list[Row]:
    """Wall time of `captioner caption one.jpg --checkpoint X` in a fresh process vs a bare script in a fresh
    process that imports torch, builds the same encoder and runs it once on the same image.

    The model given with --checkpoint, else the shipped checkpoint when it exists, else a model file with
    EfficientNet-Lite0 and an untrained decoder of the shipped sizes (beam 3 then runs all 20 steps). One 640×480 JPEG. Each side runs once to warm the
    file cache, then 3 times alternately. Ratio = caption / bare.
    """
    from captioner.checkpoint import load_model_file

    image = workloads.write_photos(settings.workdir, 1, size=(640, 480))[1]
    model, which = caption_model(settings)
    encoder = load_model_file(model, "caption")["encoder"]
    caption = [sys.executable, "-m", "captioner", "caption", str(image), "--checkpoint", str(model)]
    bare = [sys.executable, "-c", BARE_ENCODER_SCRIPT, str(image), encoder["name"], str(int(encoder["pretrained"])),
            str(encoder["image_size"] or 0)]
    seconds = race({"caption": lambda: run_python(caption), "bare": lambda: run_python(bare)},
                   repeats=1 if settings.quick else 3, warmup=0 if settings.quick else 1)
    size = f" at {encoder['image_size']} px" if encoder["image_size"] else ""
    case = f"{encoder['name']}{size}, beam 3, {which}"
    return [Row("caption-cold-start", case, seconds["caption"], seconds["bare"], "s",
                seconds["caption"] / seconds["bare"], Target(False, 1.5))]


# -- 6. memory while training from a large cache ------------------------------------------------------------------
PROBE_SCRIPT = "import json, sys; from captioner.benchmarks.workloads import train_from_cache_probe as probe; " \
               "print(json.dumps(probe(**json.loads(sys.argv[1]))))"


# what the memory probe reports → (row label, target on the 10k / 1k ratio)
MEMORY_MEASURES = {
    "peak_rss_mib": ("peak RSS", Target(False, 1.2)),
    "peak_anon_mib": ("peak anonymous (heap, tensors)", Target(False, 1.2)),
    "peak_file_mib": ("peak file-backed (libraries, mapped cache)", None),
}


@BENCHMARKS.register("cache-memory")
def cache_memory(settings: Settings) -> list[Row]:
    """Peak RSS of a fresh process training the decoder from a 10k-image feature cache vs from a 1k-image one.

    Synthetic caches in the `FeatureCache` layout (random float16 grids of 49 × 1280, 1.25 GB for 10k images)
    with one COCO-length caption per image, read through `CocoCaptions` and a DataLoader (batch 64, shuffled)
    for 160 steps, so both runs touch every cached image. The decoder is small (hidden 128): the grids, not the
    decoder, scale with the cache. Peak RSS is the process's VmHWM; on Linux the peak is also split into
    anonymous memory (heap, tensors) and file-backed pages (shared libraries and the memory-mapped cache:
    clean page cache that the kernel can drop, but counted in RSS). Ratio = 10k / 1k; flat is 1.
    """
    counts, grid, steps, batch = ((50, 500), (49, 64), 10, 16) if settings.quick else ((1000, 10000), (49, 1280), 160, 64)
    small, large = (_memory_probe(settings.workdir, count, grid, steps, batch) for count in counts)
    sizes = f": {counts[1]} vs {counts[0]} cached images of {grid[0]}×{grid[1]} float16, {steps} steps of batch {batch}"
    measures = [(key, label, target) for key, (label, target) in MEMORY_MEASURES.items() if key in small]
    return [Row("cache-memory", label + (sizes if i == 0 else ""), large[key], small[key], "MiB", large[key] / small[key], target)
            for i, (key, label, target) in enumerate(measures)]


def _memory_probe(workdir: Path, count: int, grid: tuple[int, int], steps: int, batch: int) -> dict[str, float]:
    """Write a cache of `count` images, train from it in a fresh process, and return that process's memory peaks."""
    folder, ids = workdir / f"cache-{count}", list(range(1, count + 1))
    workloads.write_feature_cache(folder, ids, grid)
    annotations = workloads.write_captions_json(workdir / f"captions-{count}.json", ids, vocab_words=1000)
    arguments = {"cache_dir": str(folder), "annotations": str(annotations), "steps": steps, "batch_size": batch,
                 "decoder_sizes": {"embed_dim": 64, "hidden_dim": 128, "attention_dim": 64}}
    try:
        output = run_python([sys.executable, "-c", PROBE_SCRIPT, json.dumps(arguments)])
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # up to 1.25 GB: free the disk before the next size
    return json.loads(output.splitlines()[-1])
