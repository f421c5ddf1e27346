"""Models and running servers for the `captioner serve` tests."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import torch

from captioner.data.vqa import AnswerVocabulary
from captioner.encoders import encoder_from_config
from captioner.inference import Captioner
from captioner.models.vqa import VQAConfig, VQAModel
from captioner.text import Vocabulary
from captioner.vqa_inference import VQAAnswerer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "example.jpg"  # COCO val 85772, CC BY 2.0 (credit in the README)
QUESTIONS = ["what is the man holding?", "what sport is this?", "is the man wearing a hat?", "what color is his shirt?",
             "how many balls are there?", "where is the racket?"]
ANSWERS = ["tennis racket", "tennis", "yes", "no", "blue", "white", "1", "2", "left", "right"]


def write_answerer(captioner: Captioner, path: Path) -> Path:
    """A VQA model file over the captioner's own encoder settings with an UNTRAINED answer head: the serve tests
    check the serving path (batching, shared grids, validation, the page), not the answers; VQA training and
    accuracy are tested in test_vqa_training.py."""
    torch.manual_seed(0)
    encoder = encoder_from_config(captioner.encoder_config)
    questions, answers = Vocabulary.build(QUESTIONS), AnswerVocabulary(ANSWERS)
    config = VQAConfig(vocab_size=len(questions), num_answers=len(answers), feature_dim=encoder.channels,
                       embed_dim=16, hidden_dim=32, attention_dim=16, glimpses=2, fusion_dim=32, dropout=0.0)
    meta = {"note": "untrained answer head, for serving tests"}
    return VQAAnswerer(encoder, VQAModel(config), questions, answers, captioner.encoder_config, meta=meta).save(path, force=True)


@contextmanager
def running_server(*arguments: str, timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen]]:
    """`captioner serve --port 0 ARGUMENTS` in a child process: yields (base URL, process) once /health answers;
    stops it with Ctrl-C (SIGINT) afterwards."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "captioner", "serve", "--port", "0", *arguments],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = process.stdout.readline()
        if "listening on" not in first:
            raise RuntimeError(f"server did not start: {first}{process.communicate(timeout=timeout)[1]}")
        url = first.split("listening on ")[1].split()[0]
        wait_until_healthy(url, timeout)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_until_healthy(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/health did not answer within {timeout} s")
        time.sleep(0.1)
