"""VQA on the encoder grid: a many-to-one question LSTM, question-guided attention over the L2-normalised grid
(the reasoning is a registered switch, see vqa_reasoning.py; by default G glimpses with concat fusion as in
Kazemi & Elqursh 2017, "Show, Ask, Attend, and Answer"), and an answer classifier.

Plain nn.Module: no Lightning imports, usable bare from a notebook.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from captioner.models.vqa_reasoning import REASONERS, WordStates


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on each of the K soft scores, summed over answers, mean over the batch (VQA v2 recipe)."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / logits.size(0)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the soft scores renormalised to a distribution (questions with no known answer skipped)."""
    mass = targets.sum(dim=1, keepdim=True)  # (B, 1)
    known = mass.squeeze(1) > 0  # (B,)
    distribution = targets[known] / mass[known]  # (B', K)
    return -(distribution * logits[known].log_softmax(dim=1)).sum() / max(int(known.sum()), 1)


# loss name → (loss(logits, soft targets), probabilities(logits)): each loss with the probabilities it trains
LOSSES: dict[str, tuple[Callable, Callable]] = {
    "bce": (bce_loss, torch.sigmoid),  # each answer's own score: an estimate of its soft score, need not sum to 1
    "soft_ce": (soft_cross_entropy, lambda logits: logits.softmax(dim=-1)),
}


@dataclass
class VQAConfig:
    vocab_size: int = 0  # filled in from the question vocabulary
    num_answers: int = 0  # filled in from the answer vocabulary (K)
    feature_dim: int = 0  # filled in from the encoder (C)
    embed_dim: int = 300
    hidden_dim: int = 512  # question LSTM state, q
    attention_dim: int = 512
    glimpses: int = 2  # attention maps: independent glimpses, or hops of stacked attention
    reasoning: str = "glimpses"  # glimpses | stacked | film | mac (captioner.models.vqa_reasoning.REASONERS)
    film_blocks: int = 2  # FiLM residual blocks (reasoning: film)
    fusion_dim: int = 1024  # hidden layer of the classifier MLP
    dropout: float = 0.5
    use_image: bool = True  # False: the question-only ("blind") baseline, same classifier
    coord_features: bool = False  # append each cell's (x, y) to its features: lets glimpses say where they looked
    loss: str = "bce"  # bce | soft_ce

    TRAINING_ONLY: ClassVar[tuple[str, ...]] = ("dropout", "loss")  # shape only the loss: files differing in them average

    def __post_init__(self) -> None:
        for field in ("embed_dim", "hidden_dim", "attention_dim", "glimpses", "fusion_dim", "film_blocks"):
            if getattr(self, field) < 1:
                raise ValueError(f"vqa model {field} must be positive, got {getattr(self, field)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"vqa model dropout must be in [0, 1), got {self.dropout}")
        if self.loss not in LOSSES:
            raise ValueError(f"vqa model loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.reasoning not in REASONERS:
            raise ValueError(f"vqa model reasoning must be one of {REASONERS.names()}, got {self.reasoning!r}")


class QuestionEncoder(nn.Module):
    """Embedding + LSTM, many-to-one: the hidden state after each question's true last word."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)

    def forward(self, questions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """questions (B, T) padded with 0, lengths (B,) → q (B, H)."""
        return self.read(questions, lengths)[0]

    def read(self, questions: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, WordStates]:
        """q (B, H) and the state after every word (B, T', H) with its mask (B, T'), T' the longest length."""
        embedded = self.dropout(torch.tanh(self.embed(questions)))  # (B, T, E)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, _) = self.lstm(packed)  # h (1, B, H), in the original batch order
        states, _ = pad_packed_sequence(out, batch_first=True)  # (B, T', H), zeros after each question's end
        mask = torch.arange(states.size(1), device=states.device) < lengths.to(states.device).unsqueeze(1)  # (B, T')
        return h[-1], WordStates(states, mask)


def grid_coordinates(num_locations: int, device: torch.device) -> torch.Tensor:
    """(L, 2) cell centres (x, y) in [-1, 1] of a square h×h grid flattened row-major."""
    side = math.isqrt(num_locations)
    if side * side != num_locations:
        raise ValueError(f"coord_features needs a square grid, got {num_locations} locations")
    centres = (torch.arange(side, device=device, dtype=torch.float32) + 0.5) / side * 2 - 1  # (h,)
    y, x = torch.meshgrid(centres, centres, indexing="ij")  # (h, h) each
    return torch.stack([x, y], dim=-1).reshape(num_locations, 2)  # (h, h, 2) → (L, 2)


class VQAModel(nn.Module):
    """forward(features (B, L, C), questions (B, T), lengths (B,)) → logits (B, K), alphas (B, G, L)."""

    def __init__(self, config: VQAConfig) -> None:
        super().__init__()
        if min(config.vocab_size, config.num_answers, config.feature_dim) < 1:
            raise ValueError("VQAConfig needs vocab_size, num_answers and feature_dim (fill them from the data and encoder)")
        self.config = c = config
        self.question_encoder = QuestionEncoder(c.vocab_size, c.embed_dim, c.hidden_dim, c.dropout)
        self.dropout = nn.Dropout(c.dropout)
        fused = c.hidden_dim
        if c.use_image:
            self.reasoner = REASONERS.get(c.reasoning)(c, c.feature_dim + (2 if c.coord_features else 0))
            fused = self.reasoner.out_dim
        self.classifier = nn.Sequential(
            nn.Linear(fused, c.fusion_dim), nn.ReLU(), nn.Dropout(c.dropout), nn.Linear(c.fusion_dim, c.num_answers)
        )

    def visual(self, features: torch.Tensor) -> torch.Tensor:
        """(B, L, C) grid → L2-normalised over C, dropout, (+ (x, y) per cell with coord_features): (B, L, C').
        Dropout never touches the coordinates: a cell's position is not a feature to be robust to."""
        normalised = self.dropout(F.normalize(features.float(), dim=-1))  # (B, L, C)
        if not self.config.coord_features:
            return normalised
        coords = grid_coordinates(features.size(1), features.device)  # (L, 2)
        return torch.cat([normalised, coords.expand(features.size(0), -1, -1)], dim=-1)  # (B, L, C + 2)

    def forward(
        self, features: torch.Tensor, questions: torch.Tensor, lengths: torch.Tensor, image_index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """features (N, L, C): one grid per question (N = B), or each image once with image_index (B,) naming the
        row of each question's image, so that the grid is projected once per image."""
        q, words = self.question_encoder.read(questions, lengths)  # (B, H), (B, T', H)
        batch, locations = q.size(0), features.size(1)
        if not self.config.use_image:  # blind: the answer from q alone; report uniform "attention"
            alphas = features.new_full((batch, self.config.glimpses, locations), 1.0 / locations)  # (B, G, L)
            return self.classifier(self.dropout(q)), alphas
        v = self.visual(features)  # (N, L, C')
        fused, alphas = self.reasoner(v, q, image_index, words)  # (B, F), (B, G, L)
        return self.classifier(self.dropout(fused)), alphas

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The configured loss of logits (B, K) against soft-score targets (B, K)."""
        return LOSSES[self.config.loss][0](logits, targets)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K) answer probabilities in the sense the loss trained them (sigmoid for bce, softmax for soft_ce)."""
        return LOSSES[self.config.loss][1](logits)

    @torch.no_grad()
    def predict(
        self, features: torch.Tensor, questions: torch.Tensor, lengths: torch.Tensor, top_k: int = 5,
        image_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-k answers: probabilities (B, k), answer indices (B, k), alphas (B, G, L)."""
        logits, alphas = self(features, questions, lengths, image_index)
        probs, indices = self.probabilities(logits).topk(min(top_k, logits.size(1)), dim=1)  # (B, k) each
        return probs, indices, alphas
