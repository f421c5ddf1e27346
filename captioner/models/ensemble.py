"""An ensemble of caption decoders that read one encoder's grid and share one vocabulary, decoding as one model.

At every step the next word's probability is the mean of the members' probabilities (the usual ensemble of
captioning papers, e.g. Vinyals et al. 2015), and the word's attention map is the mean of their maps, so greedy,
sampling, beam search, consensus captions and attention figures all work unchanged. Members may be of different
architectures (Show, Attend and Tell, Up-Down): each keeps its own memory and state, reindexed together.
Unlike a soup (captioner.soup), which averages weights into one model, an ensemble runs every member.
"""

import math
from collections.abc import Sequence

import torch
from torch import nn

from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig, StepOutput


class PerMember(tuple):
    """One memory or state per member, selected and cut as beam search does to a single decoder's."""

    def select(self, index: torch.Tensor) -> "PerMember":
        return PerMember(part.select(index) for part in self)

    def head(self, n: int) -> "PerMember":
        return PerMember(part.head(n) for part in self)


class EnsembleDecoder(nn.Module):
    """Decoders of one vocabulary over one grid; `prepare`, `step` and `score_captions` as a CaptionDecoder's."""

    def __init__(self, members: Sequence[CaptionDecoder]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two decoders")
        self.members = nn.ModuleList(members)

    @property
    def config(self) -> DecoderConfig:
        """The first member's settings (the members agree on the vocabulary and the grid they read)."""
        return self.members[0].config

    def prepare(self, features: torch.Tensor) -> tuple[PerMember, PerMember]:
        """features (B, L, C) → every member's memory and initial state."""
        prepared = [member.prepare(features) for member in self.members]
        return PerMember(memory for memory, _ in prepared), PerMember(state for _, state in prepared)

    def step(self, tokens: torch.Tensor, state: PerMember, memory: PerMember, mode: str | None = None) -> StepOutput:
        """previous tokens (B,) → log of the mean next-word probability (B, V), the mean α (B, L), every new state."""
        outs = [member.step(tokens, s, m, mode) for member, s, m in zip(self.members, state, memory)]
        log_probs = torch.stack([out.logits.float().log_softmax(dim=-1) for out in outs])  # (K, B, V)
        alpha = torch.stack([out.alpha for out in outs]).mean(dim=0)  # (K, B, L) → (B, L)
        return StepOutput(_log_mean_exp(log_probs), alpha, PerMember(out.state for out in outs))

    def score_captions(
        self, features: torch.Tensor, captions: torch.Tensor, owners: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log of the mean probability of each word of captions (R, T+1) and the mean attention map: (R, T), (R, T, L)."""
        scored = [member.score_captions(features, captions, owners) for member in self.members]
        log_probs = torch.stack([log_p for log_p, _ in scored])  # (K, R, T); 0 at padded steps stays 0
        alphas = torch.stack([alpha for _, alpha in scored]).mean(dim=0)  # (K, R, T, L) → (R, T, L)
        return _log_mean_exp(log_probs), alphas


def _log_mean_exp(log_probs: torch.Tensor) -> torch.Tensor:
    """(K, …) log-probabilities → log of their mean probability (…); −inf where every member has −inf."""
    return log_probs.logsumexp(dim=0) - math.log(log_probs.size(0))
