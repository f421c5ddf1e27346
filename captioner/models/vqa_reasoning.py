"""How the VQA head reads the grid given the question: a registry of reasoners.

Every reasoner is built from the VQA config and the width C' of the grid it reads, exposes `out_dim`, and maps
`v (N, L, C'), q (B, H), index (B,), words → fused (B, out_dim), alphas (B, G, L)`: what the classifier sees, and
the attention map of each of its G glimpses (or hops). `words` holds the question LSTM's state after every word
(only `mac` reads it; q stays the question vector of every reasoner). `v` holds each image once and `index` says which image each
question is about (None: one image per question), so work that does not depend on the question (projecting the
grid) runs once per image however many questions it has. Plain nn.Modules, no Lightning.

- `glimpses`: G independent glimpses guided by q, concatenated with q (Kazemi & Elqursh 2017).
- `stacked`: G hops whose query is refined by what the previous hop saw, u_k = u_{k-1} + z_k (Yang et al.
  2016); the classifier sees the final query and every hop's raw glimpse, so with cell coordinates it can
  compare where the hops looked (relation-aware fusion).
- `film`: the grid is first conditioned on the question by FiLM residual blocks, γ(q)·x + β(q) after a 3×3
  convolution (Perez et al. 2018), then read with G glimpses guided by q.
- `mac`: G hops in the manner of MAC (Hudson & Manning 2018), without its memory gate. Each hop first reads the
  question with a query of its own (the control unit: attention over the LSTM's word states, so hop 1 can read
  "the red circle" and hop 2 "the blue square"), then reads the grid, its reading weighing the cells' features
  and the previous hop's glimpse shifting them ("the shape to the left of" where hop 1 looked). The classifier
  sees q, every glimpse, and a product of what the question asks with what the hops found (does it match? on
  which side?).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from captioner.models.attention import AdditiveAttention
from captioner.registry import Registry

if TYPE_CHECKING:
    from captioner.models.vqa import VQAConfig

REASONERS: Registry = Registry("vqa reasoning")


class WordStates(NamedTuple):
    """The question LSTM's state after each word, states (B, T, H), and which of them are words, mask (B, T)."""

    states: torch.Tensor
    mask: torch.Tensor


def per_question(x: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """Per-image rows (N, ...) → one row per question (B, ...)."""
    return x if index is None else x.index_select(0, index)


@REASONERS.register("glimpses")
class Glimpses(nn.Module):
    def __init__(self, config: VQAConfig, visual_dim: int) -> None:
        super().__init__()
        self.attention = AdditiveAttention(visual_dim, config.hidden_dim, config.attention_dim, glimpses=config.glimpses)
        self.out_dim = config.glimpses * visual_dim + config.hidden_dim

    def forward(
        self, v: torch.Tensor, q: torch.Tensor, index: torch.Tensor | None = None, words: WordStates | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        projected = per_question(self.attention.project(v), index)  # (N, L, A) → (B, L, A)
        alphas = self.attention(projected, q)  # (B, G, L)
        glimpses = torch.bmm(alphas, per_question(v, index))  # (B, G, L) @ (B, L, C') → (B, G, C')
        return torch.cat([glimpses.flatten(1), q], dim=1), alphas  # (B, G·C' + H)


@REASONERS.register("stacked")
class StackedAttention(nn.Module):
    def __init__(self, config: VQAConfig, visual_dim: int) -> None:
        super().__init__()
        width = config.attention_dim
        self.embed = nn.Sequential(nn.Linear(visual_dim, width), nn.Tanh())  # SAN's image embedding, v_i = tanh(W a_i + b)
        self.query = nn.Linear(config.hidden_dim, width)
        self.hops = nn.ModuleList(AdditiveAttention(width, width, config.attention_dim) for _ in range(config.glimpses))
        self.out_dim = width + config.glimpses * visual_dim

    def forward(
        self, v: torch.Tensor, q: torch.Tensor, index: torch.Tensor | None = None, words: WordStates | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.embed(v)  # (N, L, D)
        projected = [per_question(hop.project(embedded), index) for hop in self.hops]  # G × (B, L, A)
        embedded, v = per_question(embedded, index), per_question(v, index)  # (B, L, D), (B, L, C')
        u = self.query(q)  # (B, D)
        alphas, glimpses = [], []
        for hop, keys in zip(self.hops, projected):
            alpha = hop(keys, u)  # (B, 1, L)
            u = u + torch.bmm(alpha, embedded).squeeze(1)  # the query refined by what this hop saw: (B, D)
            alphas.append(alpha)
            glimpses.append(torch.bmm(alpha, v).squeeze(1))  # (B, C'), with the cell coordinates when given
        return torch.cat([u, *glimpses], dim=1), torch.cat(alphas, dim=1)  # (B, D + G·C'), (B, G, L)


class FiLMBlock(nn.Module):
    """Perez et al.'s residual block: x + ReLU(γ ⊙ BN(conv3×3(r)) + β) with r = ReLU(conv1×1(x))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width, affine=False)  # γ, β come from the question instead

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """x (B, D, h, w), gamma / beta (B, D) → (B, D, h, w)."""
        r = F.relu(self.conv1(x))
        y = self.norm(self.conv2(r))
        return r + F.relu((1 + gamma)[:, :, None, None] * y + beta[:, :, None, None])


@REASONERS.register("film")
class FiLMReasoner(nn.Module):
    def __init__(self, config: VQAConfig, visual_dim: int) -> None:
        super().__init__()
        width, self.n_blocks = config.attention_dim, config.film_blocks
        self.stem = nn.Sequential(nn.Linear(visual_dim, width), nn.ReLU())
        self.film = nn.Linear(config.hidden_dim, 2 * width * self.n_blocks)  # γ and β of every block
        self.blocks = nn.ModuleList(FiLMBlock(width) for _ in range(self.n_blocks))
        self.attention = AdditiveAttention(width, config.hidden_dim, config.attention_dim, glimpses=config.glimpses)
        self.out_dim = config.glimpses * width + config.hidden_dim

    def forward(
        self, v: torch.Tensor, q: torch.Tensor, index: torch.Tensor | None = None, words: WordStates | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        locations, batch = v.size(1), q.size(0)
        side = math.isqrt(locations)
        if side * side != locations:
            raise ValueError(f"film reasoning needs a square grid, got {locations} locations")
        x = per_question(self.stem(v), index)  # (N, L, D) → (B, L, D)
        x = x.transpose(1, 2).reshape(batch, -1, side, side)  # (B, L, D) → (B, D, h, w)
        gammas, betas = self.film(q).view(batch, self.n_blocks, 2, -1).unbind(2)  # (B, N, D) each
        for n, block in enumerate(self.blocks):
            x = block(x, gammas[:, n], betas[:, n])
        x = x.flatten(2).transpose(1, 2)  # (B, D, h, w) → (B, L, D)
        alphas = self.attention(self.attention.project(x), q)  # (B, G, L)
        glimpses = torch.bmm(alphas, x)  # (B, G, D)
        return torch.cat([glimpses.flatten(1), q], dim=1), alphas  # (B, G·D + H)


@REASONERS.register("mac")
class MACHops(nn.Module):
    def __init__(self, config: VQAConfig, visual_dim: int) -> None:
        super().__init__()
        hidden, width, self.visual_dim = config.hidden_dim, config.attention_dim, visual_dim
        # control unit: hop k's own view of the question W_k q, then one attention over the words for every hop
        self.positions = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(config.glimpses))
        self.control_query = nn.Linear(2 * hidden, hidden)  # [c_{k-1}; W_k q] → what to read next
        self.control_score = nn.Linear(hidden, 1)
        # read unit, shared by the hops: grid keys, the previous glimpse's shift, the reading as score weights
        self.keys = nn.Linear(visual_dim, width)
        self.previous = nn.Linear(visual_dim, width, bias=False)
        self.wants = nn.Linear(hidden, width)
        # product fusion of what the question asks with what the hops found
        self.ask = nn.Linear((1 + config.glimpses) * hidden, width)
        self.look = nn.Linear(config.glimpses * visual_dim, width)
        self.out_dim = hidden + config.glimpses * visual_dim + width

    def forward(
        self, v: torch.Tensor, q: torch.Tensor, index: torch.Tensor | None = None, words: WordStates | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if words is None:
            raise ValueError("mac reasoning reads the question word by word: pass its WordStates")
        keys = per_question(self.keys(v), index)  # (N, L, A) → (B, L, A): projected once per image
        v = per_question(v, index)  # (B, L, C')
        reading, glimpse = torch.zeros_like(q), q.new_zeros(q.size(0), self.visual_dim)  # c_0 (B, H), g_0 (B, C')
        alphas, readings, glimpses = [], [], []
        for position in self.positions:
            reading = self.control(words, torch.cat([reading, position(q)], dim=1))  # c_k (B, H)
            alpha = self.read(keys, reading, glimpse)  # (B, 1, L)
            glimpse = torch.bmm(alpha, v).squeeze(1)  # g_k (B, C'), with the cell coordinates when given
            alphas.append(alpha)
            readings.append(reading)
            glimpses.append(glimpse)
        seen = torch.cat(glimpses, dim=1)  # (B, G·C')
        joint = torch.tanh(self.ask(torch.cat([q, *readings], dim=1))) * torch.tanh(self.look(seen))  # (B, A)
        return torch.cat([q, seen, joint], dim=1), torch.cat(alphas, dim=1)  # (B, H + G·C' + A), (B, G, L)

    def control(self, words: WordStates, query: torch.Tensor) -> torch.Tensor:
        """c_k = Σ_t β_t h_t with β = softmax over the true words of w · (W_c [c_{k-1}; W_k q] ⊙ h_t): (B, H)."""
        asked = self.control_query(query).unsqueeze(1)  # (B, 1, H)
        scores = self.control_score(asked * words.states).squeeze(-1).masked_fill(~words.mask, float("-inf"))  # (B, T)
        return torch.bmm(scores.softmax(dim=-1).unsqueeze(1), words.states).squeeze(1)  # (B, 1, T) @ (B, T, H) → (B, H)

    def read(self, keys: torch.Tensor, reading: torch.Tensor, glimpse: torch.Tensor) -> torch.Tensor:
        """α = softmax_L(W_r c_k · tanh(W_v v_i + W_g g_{k-1})): the reading weighs the features it names, the
        previous glimpse shifts them (where to look relative to it). keys (B, L, A) → α (B, 1, L)."""
        energy = torch.tanh(keys + self.previous(glimpse).unsqueeze(1))  # (B, L, A)
        scores = torch.bmm(energy, self.wants(reading).unsqueeze(2)).squeeze(2)  # (B, L, A) @ (B, A, 1) → (B, L)
        return scores.softmax(dim=-1).unsqueeze(1)
