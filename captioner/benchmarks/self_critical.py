"""Self-critical training speed: one SCST step, and how much of it the CIDEr-D reward takes."""

import time

import torch

from captioner.benchmarks import workloads
from captioner.benchmarks.core import BENCHMARKS, Row, Settings, Target
from captioner.benchmarks.suite import decoder_sizes
from captioner.config import EncoderConfig, OptimConfig
from captioner.encoders import build_encoder
from captioner.models.caption_decoder import CaptionDecoder
from captioner.text import SPECIALS, Vocabulary
from captioner.training.caption_module import CaptioningModule
from captioner.training.caption_objectives import CaptionTrainingConfig


@BENCHMARKS.register("scst-step")
def scst_step(settings: Settings) -> list[Row]:
    """Seconds of one self-critical step with the default training config (K = 5 candidates per image, the best
    beam hypotheses, for B = 32 images: one batched beam search, one teacher-forced pass for their log-probabilities;
    CIDEr-D rewards, mean-of-others baseline, backward, Adam) and the part of it spent computing rewards.

    The shipped decoder sizes, untrained, over a 2,000-word vocabulary; every image has five COCO-length
    reference captions of random words, and the reward's document frequencies come from 1,000 such images, so
    the reward does the work it does on coco-mini (untrained candidates run to the maximum length, 16 words:
    the reward's worst case). Ratio = reward seconds / step seconds (the share of the step).
    """
    size = decoder_sizes(settings.quick)[0]
    images, samples = (4, 2) if settings.quick else (32, 5)
    module, optimizer, batch, features = _scst_setup(size, images, samples, references=50 if settings.quick else 1000)
    timings = {"step": [], "reward": []}
    reward = module.reward

    def timed_reward(ids, captions):
        start = time.perf_counter()
        rewards = reward(ids, captions)
        timings["reward"].append(time.perf_counter() - start)
        return rewards

    module.reward = timed_reward
    for _ in range(2 if settings.quick else 6):
        start = time.perf_counter()
        loss = module.objective(module, batch, features)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        timings["step"].append(time.perf_counter() - start)
    step, share = _median(timings["step"][1:]), _median(timings["reward"][1:])
    case = f"B={images} images × K={samples} beam candidates, max 16 words, V={size.vocab}, H={size.hidden}, L={size.locations}"
    note = f"{images / step:.1f} images/s, {images * samples / step:.0f} candidate captions/s"
    return [Row("scst-step", case, share, step, "s", share / step, Target(False, 0.2), note)]


def _scst_setup(size, images: int, samples: int, references: int) -> tuple:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    vocab = Vocabulary(workloads.synthetic_words(size.vocab - len(SPECIALS)))
    captions, _ = workloads.coco_like_captions(references * 5, len(vocab), generator)  # (R, T+1)
    texts = [" ".join(vocab.decode_tokens(row)) for row in captions.tolist()]
    train_references = {i: texts[5 * i : 5 * i + 5] for i in range(references)}
    training = CaptionTrainingConfig(objective="scst", init_from="untrained", scst_samples=samples)
    decoder = CaptionDecoder(size.config()).train()
    encoder = build_encoder("tiny_cnn", pretrained=False)  # unused: the step reads grid features
    module = CaptioningModule(encoder, decoder, vocab, EncoderConfig(name="tiny_cnn"), OptimConfig(), training=training,
                              train_references=train_references)
    batch = {"image_ids": torch.arange(images), "references": [train_references[i] for i in range(images)]}
    features = torch.randn(images, size.locations, size.channels, generator=generator)  # (B, L, C)
    return module, torch.optim.Adam(decoder.parameters(), lr=5e-5), batch, features


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]
