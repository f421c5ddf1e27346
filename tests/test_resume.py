"""A training run killed with SIGKILL mid-epoch resumes from its last checkpoint and ends in the same state."""

import json
import signal
import subprocess
import sys
import time

import pytest

from helpers import CONFIGS

STEPS = "trainer.max_steps=12"


def train_command(shapes, out_dir, *extra):
    return [
        sys.executable, "-m", "captioner", "train", "--config", str(CONFIGS / "caption_tiny.yaml"),
        f"data.train_annotations={shapes / 'captions_train.json'}", f"data.val_annotations={shapes / 'captions_val.json'}",
        f"data.images_dir={shapes / 'images'}", f"trainer.out_dir={out_dir}", "trainer.max_epochs=10", STEPS,
        "trainer.checkpoint_every_n_steps=2", "data.batch_size=16", "optim.schedule=constant", *extra,
    ]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_reaches_the_same_state(shapes, tmp_path):
    reference = subprocess.run(train_command(shapes, tmp_path / "whole"), capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr[-2000:]

    run = tmp_path / "crashed"
    process = subprocess.Popen(train_command(shapes, run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert last.exists(), "no checkpoint was written before the kill"
    assert not (run / "model.pt").exists()  # it really died before the end

    resumed = subprocess.run(train_command(shapes, run, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole, again = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "whole", run))
    assert again["global_step"] == whole["global_step"] == 12
    assert again["metrics"]["val/loss"] == pytest.approx(whole["metrics"]["val/loss"], rel=0.1)
