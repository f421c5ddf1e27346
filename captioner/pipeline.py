"""Caption an image and answer questions about it with one encoder pass: when the caption model and the VQA
model were trained on the same frozen encoder, both read the same grid, so each image is encoded once.

    captioner, answerer = Captioner.load(), VQAAnswerer.load()
    for result in describe(captioner, answerer, ["photo.jpg"], ["how many people are in the picture?"]):
        print(result.caption.text, result.answers[0].answers[0])
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from captioner.errors import CaptionerError
from captioner.inference import Caption, Captioner
from captioner.vqa_inference import Answer, VQAAnswerer


@dataclass
class Described:
    caption: Caption
    answers: list[Answer]  # one per question, in the order asked


def check_same_encoder(captioner: Captioner, answerer: VQAAnswerer) -> None:
    """A one-line CaptionerError unless both models read the grid of the same encoder with the same weights."""
    if captioner.encoder is answerer.encoder:  # already shared: nothing to compare (describe() asks on every call)
        return
    caption_side, vqa_side = captioner.encoder.describe(), answerer.encoder.describe()
    differences = [f"{k} {caption_side.get(k)!r} vs {vqa_side.get(k)!r}" for k in sorted(caption_side) if caption_side.get(k) != vqa_side.get(k)]
    if not differences and (captioner.encoder_config.own_weights or answerer.encoder_config.own_weights):
        theirs, ours = captioner.encoder.state_dict(), answerer.encoder.state_dict()
        if any(not torch.equal(theirs[k].float().cpu(), ours[k].float().cpu()) for k in theirs):
            differences.append("encoder weights differ (fine-tuned or not pretrained)")
    if differences:
        raise CaptionerError(f"the caption model and the VQA model need different encoder passes ({'; '.join(differences)})")


def share_encoder(captioner: Captioner, answerer: VQAAnswerer) -> VQAAnswerer:
    """Make the answerer use the captioner's encoder module (one copy of the weights in memory); checked first."""
    check_same_encoder(captioner, answerer)
    answerer.encoder = captioner.encoder
    return answerer


def share_encoder_if_same(captioner: Captioner, answerer: VQAAnswerer) -> bool:
    """share_encoder where both models read the same grid; False (each keeps its own encoder) where they do not."""
    try:
        share_encoder(captioner, answerer)
    except CaptionerError:
        return False
    return True


@torch.no_grad()
def describe(
    captioner: Captioner,
    answerer: VQAAnswerer,
    images: Sequence[str | Path | Image.Image],
    questions: Sequence[str],
    beam_size: int = 3,
    top_k: int = 3,
) -> list[Described]:
    """Caption each image and answer every question about it, running the encoder once per image."""
    check_same_encoder(captioner, answerer)
    for question in questions:
        answerer.check_question(question)
    grid = captioner.encode_images(images)  # (B, L, C), shared by both heads
    captions = captioner.caption_features(grid, beam_size=beam_size)
    asked = len(questions)
    index = torch.arange(len(images)).repeat_interleave(asked)  # (B·Q,): question b·Q + k is about image b
    answers = answerer.ask_features(grid, list(questions) * len(images), top_k, image_index=index) if asked else []
    return [Described(caption, answers[i * asked : (i + 1) * asked]) for i, caption in enumerate(captions)]
