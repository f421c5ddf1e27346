"""`captioner caption` on a real collection: folders, output files, resuming after a kill, and bad input."""

import json
import os
import signal
import subprocess
from pathlib import Path
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from captioner.benchmarks.workloads import write_model_file
from captioner.cli import main
from captioner.config import EncoderConfig


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small untrained model file (tiny CNN, 64 px): arbitrary captions, quickly."""
    torch.manual_seed(0)
    sizes = {"embed_dim": 16, "hidden_dim": 32, "attention_dim": 16}
    return write_model_file(tmp_path_factory.mktemp("model") / "tiny.pt",
                            EncoderConfig(name="tiny_cnn", pretrained=False, image_size=64), sizes, vocab_words=40)


def make_photos(folder, count, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + count):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"photo_{i:03d}.jpg")
    return sorted(folder.glob("*.jpg"))


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def caption(model, *args):
    return main(["caption", *map(str, args), "--checkpoint", str(model), "--quiet"])


def test_a_folder_goes_to_a_jsonl_file_and_running_again_captions_only_new_photos(model, tmp_path, capsys):
    photos = make_photos(tmp_path / "album", 5)
    out = tmp_path / "captions.jsonl"
    assert caption(model, tmp_path / "album", "--output", out) == 0
    assert [r["file"] for r in records(out)] == [str(p) for p in photos]  # sorted, one line each
    assert all(r["caption"] and len(r["beams"]) == 3 for r in records(out))
    assert capsys.readouterr().out == ""  # the captions are in the file, not on the terminal
    photos = make_photos(tmp_path / "album", 2, start=5)  # all 7 now
    assert main(["caption", str(tmp_path / "album"), "-o", str(out), "--checkpoint", str(model)]) == 0
    assert [r["file"] for r in records(out)] == [str(p) for p in photos]
    assert "resuming" in capsys.readouterr().err
    assert main(["caption", str(tmp_path / "album"), "-o", str(out), "--checkpoint", str(model)]) == 0
    assert "nothing to do: all 7 image(s) are already in" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_json_and_csv_outputs(model, tmp_path, suffix):
    photos = make_photos(tmp_path / "album", 3)
    out = tmp_path / f"captions{suffix}"
    assert caption(model, tmp_path / "album", "--output", out) == 0
    text = out.read_text()
    files = [e["file"] for e in json.loads(text)] if suffix == ".json" else [line.split(",")[0] for line in text.splitlines()[1:]]
    assert files == [str(p) for p in photos]


def test_without_output_each_image_prints_path_and_caption_in_sorted_order(model, tmp_path, capsys):
    photos = make_photos(tmp_path / "album", 3)
    assert caption(model, tmp_path / "album") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [str(p) for p in photos]


def test_non_images_and_unreadable_files_are_skipped_by_name_and_the_rest_captioned(model, tmp_path, capsys):
    photos = make_photos(tmp_path / "album", 3)
    (tmp_path / "album" / "notes.txt").write_text("shopping list")
    (tmp_path / "album" / "cut.jpg").write_bytes(photos[0].read_bytes()[:300])  # a JPEG header, then nothing
    os.symlink(".", tmp_path / "album" / "loop")  # album/loop is album again
    out = tmp_path / "captions.jsonl"
    assert caption(model, tmp_path / "album", "--recursive", "--output", out) == 1  # something was skipped
    err = capsys.readouterr().err.splitlines()
    assert f"captioner caption: skipped {tmp_path / 'album' / 'notes.txt'}: not an image file PIL can read" in err
    assert any(line.startswith("captioner caption: skipped") and "cut.jpg: corrupt or truncated image" in line for line in err)
    assert any("loop: symbolic link loop" in line for line in err)
    assert [r["file"] for r in records(out)] == [str(p) for p in photos]


@pytest.mark.parametrize("setup, args, message", [
    (lambda tmp: (tmp / "docs").mkdir(), ["{tmp}/docs"], "error: no images found in"),
    (lambda tmp: (tmp / "mine.jsonl").write_text('{"id": 7}\n'), ["{tmp}/album", "-o", "{tmp}/mine.jsonl"], "is not a captioner output"),
    (lambda tmp: None, ["{tmp}/album", "-o", "{tmp}/captions.txt"], "unknown format .txt"),
    (lambda tmp: os.mkfifo(tmp / "pipe.jsonl"), ["{tmp}/album", "-o", "{tmp}/pipe.jsonl"], "is not a regular file"),
    (lambda tmp: None, ["{tmp}/album", "-o", "/sys/captions.jsonl"], "error: cannot write /sys/captions.jsonl: Permission denied"),
    (lambda tmp: None, ["{tmp}/album", "--device", "cuda:7"], "error: device 'cuda:7' requested but"),
    (lambda tmp: None, ["{tmp}/album", "--attention", "/sys/figures"], "error: cannot write the attention figure /sys/figures/"),
])
def test_bad_input_is_one_line_and_exit_status_1_and_nothing_is_overwritten(model, tmp_path, capsys, setup, args, message):
    make_photos(tmp_path / "album", 2)
    setup(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert caption(model, *[a.format(tmp=tmp_path) for a in args]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert {p: p.read_bytes() for p in before} == before


def test_attention_figures_are_named_by_stem_even_when_two_photos_share_one(model, tmp_path):
    make_photos(tmp_path / "a", 1)
    make_photos(tmp_path / "b", 2)  # b/photo_000.jpg has the same stem as a/photo_000.jpg
    assert caption(model, tmp_path / "a", tmp_path / "b", "--attention", tmp_path / "figures") == 0
    names = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))  # each with its raw maps beside it (.json)
    assert len(names) == 3 and "photo_001_attention.png" in names
    assert sorted(p.stem for p in (tmp_path / "figures").glob("*.json")) == [Path(name).stem for name in names]
    assert sum(name.startswith("photo_000_") and len(name) == len("photo_000_12345678_attention.png") for name in names) == 2


def test_a_run_killed_halfway_resumes_and_captions_every_image_exactly_once(model, tmp_path):
    photos = make_photos(tmp_path / "album", 80)
    out = tmp_path / "captions.jsonl"
    command = [sys.executable, "-m", "captioner", "caption", str(tmp_path / "album"), "--output", str(out),
               "--checkpoint", str(model), "--batch-size", "2", "--max-len", "20", "--quiet"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = 0
    while lines < len(photos) // 2:
        assert run.poll() is None, f"finished before it could be killed: {run.stderr.read().decode()}"
        time.sleep(0.005)
        lines = out.read_bytes().count(b"\n") if out.exists() else 0
    run.send_signal(signal.SIGKILL)
    run.wait()
    run.stderr.close()
    written = records(out)  # every line written so far parses: none was cut
    assert len(photos) // 2 <= len(written) < len(photos)
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    files = [r["file"] for r in records(out)]
    assert sorted(files) == [str(p) for p in photos]  # every image exactly once
    assert records(out)[: len(written)] == written  # what the killed run wrote is kept as it was


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a Linux file size limit to make writes fail")
def test_an_output_that_fills_up_is_one_line_keeps_whole_lines_and_a_rerun_finishes(model, tmp_path):
    import resource

    photos = make_photos(tmp_path / "album", 6)
    out = tmp_path / "captions.jsonl"
    command = [sys.executable, "-m", "captioner", "caption", str(tmp_path / "album"), "--output", str(out),
               "--checkpoint", str(model), "--batch-size", "1", "--quiet"]
    def disk_nearly_full():  # writes past 700 bytes fail, as on a full disk (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (700, 700))
    full = subprocess.run(command, capture_output=True, text=True, preexec_fn=disk_nearly_full)
    assert full.returncode == 1 and len(full.stderr.strip().splitlines()) == 1, full.stderr
    assert f"error: cannot write {out}: File too large; the captions already in it are kept" in full.stderr
    kept = records(out)  # whole lines only: the one that did not fit was taken back
    assert 0 < len(kept) < len(photos) and out.read_bytes().endswith(b"\n")
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert [r["file"] for r in records(out)] == [str(p) for p in photos] and records(out)[: len(kept)] == kept
