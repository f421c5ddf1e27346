"""Self-critical sequence training (Rennie et al. 2017) on the caption decoder: the candidate captions (sampled, or
the beam-search hypotheses) with gradients, the baselines, and the policy-gradient loss. Plain PyTorch; the reward
(CIDEr-D) is computed by the caller.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch

from captioner.models.caption_decoder import CaptionDecoder
from captioner.models.decoding import beam_search
from captioner.registry import Registry
from captioner.text import Vocabulary


class Samples(NamedTuple):
    """K candidate captions per image, image-major: rows i·K … i·K + K − 1 belong to image i."""

    tokens: torch.Tensor  # (B·K, T) word ids, <end> included where produced, <pad> after it
    log_probs: torch.Tensor  # (B·K, T) log p of each word, with gradient
    mask: torch.Tensor  # (B·K, T) 1 for every generated word, <end> included; 0 after it


# A candidate source: (decoder, features (B, L, C), K, max_len) → K captions per image with their log-probabilities.
CandidateSource = Callable[[CaptionDecoder, torch.Tensor, int, int], Samples]
CANDIDATES: Registry[CandidateSource] = Registry("self-critical candidate source")


@CANDIDATES.register("sample")
def sample_captions(
    decoder: CaptionDecoder, features: torch.Tensor, samples: int, max_len: int, generator: torch.Generator | None = None
) -> Samples:
    """Sample `samples` captions per image from the decoder in one (B·K)-row batch; features (B, L, C).

    The grid's memory is computed once per image and read, not copied, by its K samples (consecutive rows). The
    decoder stays in whatever mode the caller set (training: dropout on, as in self-critical.pytorch).
    """
    B = features.size(0)
    memory, state = decoder.prepare(features)
    expand = torch.arange(B, device=features.device).repeat_interleave(samples)  # (B·K,) image of every row
    state = state.select(expand)
    tokens = torch.full((B * samples,), Vocabulary.start_id, dtype=torch.long, device=features.device)
    done = torch.zeros(B * samples, dtype=torch.bool, device=features.device)
    words, log_probs, masks = [], [], []
    for _ in range(max_len):
        out = decoder.step(tokens, state, memory)
        step_log_probs = out.logits.float().log_softmax(dim=-1)  # (B·K, V)
        chosen = torch.multinomial(step_log_probs.detach().exp(), 1, generator=generator).squeeze(1)  # (B·K,)
        chosen = chosen.masked_fill(done, Vocabulary.pad_id)
        words.append(chosen)
        log_probs.append(step_log_probs.gather(1, chosen.unsqueeze(1)).squeeze(1).masked_fill(done, 0.0))  # <pad>: −inf
        masks.append((~done).float())
        done = done | (chosen == Vocabulary.end_id)
        tokens, state = chosen, out.state
        if bool(done.all()):
            break
    return Samples(torch.stack(words, 1), torch.stack(log_probs, 1), torch.stack(masks, 1))


@CANDIDATES.register("beam")
def beam_candidates(decoder: CaptionDecoder, features: torch.Tensor, samples: int, max_len: int) -> Samples:
    """The `samples` best beam-search hypotheses of each image (beam width `samples`) as its candidates, as the
    SCST of Cornia et al. 2020 (M² Transformer) does; their log-probabilities come from one teacher-forced pass.

    An image with fewer finished hypotheses than `samples` repeats its last one, so every image has K rows.
    """
    with torch.no_grad():
        found = beam_search(decoder, features, beam_size=samples, max_len=max_len)
    rows = []
    for beams, finished in zip(found.beams, found.finished):
        beams = beams + beams[-1:] * (samples - len(beams))
        rows += [[Vocabulary.start_id, *tokens, *([Vocabulary.end_id] if finished else [])] for tokens, _ in beams]
    captions = torch.nn.utils.rnn.pad_sequence([torch.tensor(r) for r in rows], batch_first=True,
                                               padding_value=Vocabulary.pad_id).to(features.device)  # (B·K, T+1)
    owners = torch.arange(features.size(0), device=features.device).repeat_interleave(samples)  # (B·K,) image of each row
    return teacher_forced_log_probs(decoder, features, captions, owners)


def teacher_forced_log_probs(decoder: CaptionDecoder, features: torch.Tensor, captions: torch.Tensor, owners: torch.Tensor) -> Samples:
    """Given captions (R, T+1) = <start> … [<end>] <pad>… as candidates, with their words' log p under the generation
    policy; features (B, L, C), owners (R,) the image of each."""
    log_probs, _ = decoder.score_captions(features, captions, owners)
    targets = captions[:, 1:]  # (R, T)
    return Samples(targets, log_probs, (targets != Vocabulary.pad_id).float())


def self_critical_loss(log_probs: torch.Tensor, mask: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """−Σ (r − b)·log p(w_t) over generated words, per generated word: log_probs, mask (R, T), advantage (R,)."""
    return -(advantage.detach().unsqueeze(1) * log_probs * mask).sum() / mask.sum().clamp(min=1)


# A baseline maps the samples' rewards (B, K) — and, through `greedy_rewards`, the rewards of each image's greedy
# caption (B,), computed only when the baseline asks — to a baseline per sample (B, K).
Baseline = Callable[[torch.Tensor, Callable[[], torch.Tensor]], torch.Tensor]
BASELINES: Registry[Baseline] = Registry("self-critical baseline")


@BASELINES.register("greedy")
def greedy_baseline(rewards: torch.Tensor, greedy_rewards: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Rennie et al.: the reward of the image's greedy (test-time) caption."""
    return greedy_rewards().unsqueeze(1).expand_as(rewards)


@BASELINES.register("mean_others")
def mean_of_others_baseline(rewards: torch.Tensor, greedy_rewards: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Luo 2020 ("new self-critical"): the mean reward of the image's other K − 1 samples."""
    K = rewards.size(1)
    if K < 2:
        raise ValueError("the mean_others baseline needs at least 2 samples per image")
    return (rewards.sum(dim=1, keepdim=True) - rewards) / (K - 1)
