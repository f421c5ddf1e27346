"""Benchmarks for captioning whole collections: a folder end to end against the bare encoder, and memory against
the folder's size. Registered in `captioner.benchmarks.core.BENCHMARKS` like the core suite.
"""

import json
import shutil
import sys
import time
from pathlib import Path

import torch

from captioner.benchmarks import workloads
from captioner.benchmarks.core import BENCHMARKS, Row, Settings, Target
from captioner.benchmarks.harness import cli_defaults, race, run_python
from captioner.config import EncoderConfig
from captioner.data.images import load_image
from captioner.encoders import encode_in_chunks

PHOTO_SIZE = (640, 480)  # a phone photo scaled for the web; decoding and resizing cost what real photos cost
TINY_DECODER = {"embed_dim": 16, "hidden_dim": 32, "attention_dim": 16}


def _model(settings: Settings) -> tuple[Path, str]:
    """The caption model to run: --checkpoint, else the shipped one; a tiny generated one for --quick."""
    from captioner.inference import SHIPPED_CHECKPOINT

    if settings.checkpoint is not None:
        return settings.checkpoint, f"model file {settings.checkpoint}"
    if not settings.quick and SHIPPED_CHECKPOINT.is_file():
        return SHIPPED_CHECKPOINT, "shipped model"
    config = EncoderConfig(name="tiny_cnn", pretrained=False, image_size=64)
    return workloads.write_model_file(settings.workdir / "tiny.pt", config, TINY_DECODER, 40), "tiny untrained model"


def caption_folder(folder: Path, out: Path, model: Path, *options: str) -> int:
    """`captioner caption FOLDER --output OUT` as a user runs it (in this process); returns the lines written."""
    from captioner.cli import main

    code = main(["caption", str(folder), "--output", str(out), "--force", "--quiet", "--checkpoint", str(model), *options])
    lines = out.read_bytes().count(b"\n")
    if code != 0 or lines != sum(1 for _ in folder.iterdir()):
        raise RuntimeError(f"captioning {folder} failed (exit {code}, {lines} lines)")
    return lines


# -- 1. a folder end to end ------------------------------------------------------------------------------------
@BENCHMARKS.register("folder-captioning")
def folder_captioning(settings: Settings) -> list[Row]:
    """Images/s of `captioner caption FOLDER --output captions.jsonl --beam 3` (finding the images, decoding and
    resizing the JPEGs, the encoder, beam search, one JSON line per image; model loading included) vs the bare
    encoder forward on already-decoded tensors at the same batch size.

    2,000 (× --scale) generated photo-like 640×480 JPEGs, the shipped model, the CLI's defaults (batch size, decoding
    workers), run in this process. The bare side cycles through 128 pre-decoded images, each batch encoded as
    `caption` encodes it (on a CPU in chunks of at most 4·224² pixels: one 448-px image). The note gives where the
    time goes: the CPU time of each stage alone on 64 images. Ratio = folder / bare.
    """
    from captioner.inference import Captioner

    model, which = _model(settings)
    count = 24 if settings.quick else settings.count(2000)
    folder = settings.workdir / "photos"
    workloads.write_photos(folder, count, size=PHOTO_SIZE)
    batch = cli_defaults("caption", "batch_size")["batch_size"]
    captioner = Captioner.load(model)
    paths = sorted(folder.iterdir())
    pool = torch.stack([captioner.encoder.transform(load_image(p)) for p in paths[:128]])  # (P, 3, S, S)
    warm_up = settings.workdir / "warm-up"
    warm_up.mkdir()
    for path in paths[:32]:
        shutil.copyfile(path, warm_up / path.name)
    caption_folder(warm_up, settings.workdir / "warm-up.jsonl", model)  # imports and first-call allocations

    def bare() -> None:
        with torch.inference_mode():
            for start in range(0, count, batch):
                rows = [i % len(pool) for i in range(start, min(start + batch, count))]
                encode_in_chunks(captioner.encoder, pool[rows])  # (b, L, C), in the chunks `caption` encodes

    seconds = race({"folder": lambda: caption_folder(folder, settings.workdir / "captions.jsonl", model), "bare": bare},
                   repeats=1, warmup=0)
    per_s = {side: count / s for side, s in seconds.items()}
    case = (f"{count} JPEGs of {PHOTO_SIZE[0]}×{PHOTO_SIZE[1]}, {which} ({captioner.encoder.name} at "
            f"{captioner.encoder.image_size} px), beam 3, batch {batch}, CLI defaults")
    return [Row("folder-captioning", case, per_s["folder"], per_s["bare"], "images/s", per_s["folder"] / per_s["bare"],
                Target(True, 0.8), _stage_costs(captioner, paths[:64], batch))]


def _stage_costs(captioner, paths: list[Path], batch: int) -> str:
    """CPU milliseconds per image of each stage run alone (decode+resize, encoder, beam 3): where the time goes,
    counted in CPU time so that other work on the machine does not inflate it."""
    start = time.process_time()
    pixels = torch.stack([captioner.encoder.transform(load_image(p)) for p in paths])  # (N, 3, S, S)
    decode = time.process_time() - start
    start = time.process_time()
    features = torch.cat([captioner.encode(pixels[i : i + batch]) for i in range(0, len(paths), batch)])  # (N, L, C)
    encode = time.process_time() - start
    start = time.process_time()
    for i in range(0, len(paths), batch):
        captioner.caption_features(features[i : i + batch], beam_size=3)
    search = time.process_time() - start
    ms = {name: 1000 * s / len(paths) for name, s in (("decode+resize", decode), ("encoder", encode), ("beam 3", search))}
    return "CPU time per image, each stage alone: " + ", ".join(f"{name} {value:.1f} ms" for name, value in ms.items())


# -- 2. memory against the folder's size --------------------------------------------------------------------------
PROBE_SCRIPT = ("import json, sys; from captioner.benchmarks.collections import caption_memory_probe as probe; "
                "print(json.dumps(probe(*sys.argv[1:])))")


def caption_memory_probe(folder: str, out: str, model: str) -> dict:
    """Caption a folder in this (fresh) process and report its peak memory."""
    start = time.perf_counter()
    lines = caption_folder(Path(folder), Path(out), Path(model))
    return {"peak_rss_mib": workloads.peak_rss_mib(), "images": lines, "seconds": time.perf_counter() - start}


@BENCHMARKS.register("caption-memory")
def caption_memory(settings: Settings) -> list[Row]:
    """Peak RSS of `captioner caption FOLDER --output captions.jsonl` in a fresh process for a folder of 10,000
    images vs one of 1,000 (both × --scale).

    The shipped model with the CLI's defaults (beam 3). The folders hold copies of 100 generated photo-like
    320×240 JPEGs (COCO-mini's size; each copy is read and decoded like any other file). Peak RSS is the
    process's VmHWM (Linux): with the CLI's default of no decoding workers on 2 cores, the whole run's memory.
    Ratio = 10k / 1k; flat is 1.
    """
    model, which = _model(settings)
    counts = (30, 300) if settings.quick else (settings.count(1000), settings.count(10000))
    distinct = workloads.write_photos(settings.workdir / "distinct", 10 if settings.quick else 100, size=(320, 240))
    small, large = (_memory_probe(settings.workdir, list(distinct.values()), n, model) for n in counts)
    workers = cli_defaults("caption", "workers")["workers"]
    case = f"{counts[1]} vs {counts[0]} JPEGs of 320×240, {which}, beam 3, {workers} decoding workers (CLI default)"
    note = f"the runs took {small['seconds']:.0f} s and {large['seconds']:.0f} s"
    return [Row("caption-memory", case, large["peak_rss_mib"], small["peak_rss_mib"], "MiB",
                large["peak_rss_mib"] / small["peak_rss_mib"], Target(False, 1.1), note)]


def _memory_probe(workdir: Path, distinct: list[Path], count: int, model: Path) -> dict:
    folder = workdir / f"folder-{count}"
    folder.mkdir()
    for i in range(count):
        shutil.copyfile(distinct[i % len(distinct)], folder / f"photo_{i:06d}.jpg")
    try:
        output = run_python([sys.executable, "-c", PROBE_SCRIPT, str(folder), str(workdir / f"captions-{count}.jsonl"), str(model)])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return json.loads(output.splitlines()[-1])
