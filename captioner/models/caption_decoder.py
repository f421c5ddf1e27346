"""Show, Attend and Tell decoder (Xu et al. 2015): an LSTM that attends over the image grid at every word."""

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from captioner.models.attention import (
    AdditiveAttention,
    expected_context,
    located_context,
    sample_locations,
)

CELLS: dict[str, type[nn.RNNCellBase]] = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}
NEVER_GENERATED = (0, 1, 3)  # <pad>, <start>, <unk>: masked out of generation steps (a caption never says "<unk>")
GATE_WIDTH = {"scalar": lambda channels: 1, "vector": lambda channels: channels}


@dataclass
class DecoderConfig:
    """Hyper-parameters; the paper's choice is the default wherever it is clear."""

    vocab_size: int = 0  # filled in from the vocabulary
    feature_dim: int = 0  # filled in from the encoder (C)
    embed_dim: int = 256
    hidden_dim: int = 512
    attention_dim: int = 256
    num_layers: int = 1
    cell: str = "lstm"  # lstm | gru
    dropout: float = 0.5
    attention: str = "soft"  # soft | hard
    attention_activation: str = "tanh"  # the paper's; tutorials use relu
    gate: str | None = "scalar"  # β_t = σ(f_β(h_{t-1})): scalar (paper), vector (tutorials) or None
    deep_output: bool = True  # L_o(E y_{t-1} + L_h h_t + L_z z_t) instead of a linear layer on h_t
    alpha_c: float = 1.0  # λ of the doubly stochastic penalty
    penalty_reduction: str = "sum"  # over locations: sum (authors' code) or mean
    attention_supervision: float = 0.0  # λ of the grounding loss on words whose category has boxes (Liu et al. 2017)
    attention_supervision_loss: str = "mass"  # mass: −log Σ_i α_i·m_i | cross_entropy: to the normalised box map
    # hard attention (REINFORCE), as in the authors' code
    expectation_prob: float = 0.5  # per minibatch, use the expected context instead of a sample
    baseline_decay: float = 0.9
    reinforce_weight: float = 1.0
    entropy_weight: float = 0.002
    hard_inference: str = "argmax"  # argmax | expectation

    def __post_init__(self) -> None:
        choices = {"cell": CELLS, "attention": ("soft", "hard"), "gate": (*GATE_WIDTH, None),
                   "penalty_reduction": ("sum", "mean"), "hard_inference": ("argmax", "expectation"),
                   "attention_supervision_loss": ("mass", "cross_entropy")}
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"decoder {field} must be one of {list(allowed)}, got {getattr(self, field)!r}")
        for field in ("embed_dim", "hidden_dim", "attention_dim", "num_layers"):
            if getattr(self, field) < 1:
                raise ValueError(f"decoder {field} must be positive, got {getattr(self, field)}")
        if self.attention_supervision < 0:
            raise ValueError(f"decoder attention_supervision must be 0 or more, got {self.attention_supervision}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"decoder dropout must be in [0, 1), got {self.dropout}")


class DecoderState(NamedTuple):
    h: torch.Tensor  # (N layers, B, H)
    c: torch.Tensor  # (N layers, B, H); unused by GRU cells

    def select(self, index: torch.Tensor) -> "DecoderState":
        """Reorder/expand the batch (beam search): index (B',) → state with batch B'."""
        return DecoderState(self.h.index_select(1, index), self.c.index_select(1, index))


class Memory(NamedTuple):
    """What the decoder reads from the image at every step, computed once per image."""

    features: torch.Tensor  # (B, L, C)
    projected: torch.Tensor  # (B, L, A)

    def select(self, index: torch.Tensor) -> "Memory":
        return Memory(self.features.index_select(0, index), self.projected.index_select(0, index))


class StepOutput(NamedTuple):
    logits: torch.Tensor  # (B, V)
    alpha: torch.Tensor  # (B, L)
    state: DecoderState


class DecoderOutput(NamedTuple):
    logits: torch.Tensor  # (B, T, V): predictions for captions[:, 1:]
    alphas: torch.Tensor  # (B, T, L)
    location_log_probs: torch.Tensor | None  # (B, T): log α_t(s_t) of sampled locations (hard attention)
    entropy: torch.Tensor | None  # (B, T): H(α_t) (hard attention)


class CaptionDecoder(nn.Module):
    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        if config.vocab_size < 5 or config.feature_dim < 1:
            raise ValueError("DecoderConfig needs vocab_size (from the vocabulary) and feature_dim (from the encoder)")
        self.config = cfg = config
        C, H, E = cfg.feature_dim, cfg.hidden_dim, cfg.embed_dim
        self.embedding = nn.Embedding(cfg.vocab_size, E, padding_idx=0)
        self.init_h = nn.Linear(C, cfg.num_layers * H)
        self.init_c = nn.Linear(C, cfg.num_layers * H)
        self.attention = AdditiveAttention(C, H, cfg.attention_dim, activation=cfg.attention_activation)
        self.gate = nn.Linear(H, GATE_WIDTH[cfg.gate](C)) if cfg.gate else None
        cell = CELLS[cfg.cell]
        self.cells = nn.ModuleList(cell(E + C if i == 0 else H, H) for i in range(cfg.num_layers))
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.deep_output:
            self.out_h = nn.Linear(H, E)
            self.out_z = nn.Linear(C, E)
        self.out = nn.Linear(E if cfg.deep_output else H, cfg.vocab_size)
        self.register_buffer("reward_baseline", torch.zeros(()))  # hard attention's moving average

    # -- the pieces one step is made of -------------------------------------------------------------------
    def prepare(self, features: torch.Tensor) -> tuple[Memory, DecoderState]:
        """features (B, L, C) → per-image memory and the initial state from the mean feature."""
        mean = features.mean(dim=1)  # (B, C)
        B, N, H = features.size(0), self.config.num_layers, self.config.hidden_dim
        h = torch.tanh(self.init_h(mean)).view(B, N, H).transpose(0, 1).contiguous()  # (N, B, H)
        c = torch.tanh(self.init_c(mean)).view(B, N, H).transpose(0, 1).contiguous()  # (N, B, H)
        return Memory(features, self.attention.project(features)), DecoderState(h, c)

    def _attend(self, memory: Memory, state: DecoderState, mode: str) -> tuple[torch.Tensor, ...]:
        """α_t from h_{t-1}; context z_t by `mode`: expect | sample | argmax. Returns α, z, log α_s, H(α)."""
        alpha = self.attention(memory.projected, state.h[-1])[:, 0]  # (B, L)
        log_prob = entropy = None
        if mode == "expect":
            context = expected_context(memory.features, alpha)
        elif mode == "sample":
            locations, log_prob, entropy = sample_locations(alpha)
            context = located_context(memory.features, locations)
        else:
            context = located_context(memory.features, alpha.argmax(dim=-1))
        if self.gate is not None:
            context = torch.sigmoid(self.gate(state.h[-1])) * context  # β_t · z_t
        return alpha, context, log_prob, entropy

    def _recur(self, inputs: torch.Tensor, state: DecoderState) -> DecoderState:
        hs, cs = [], []
        for layer, cell in enumerate(self.cells):
            if isinstance(cell, nn.LSTMCell):
                h, c = cell(inputs, (state.h[layer], state.c[layer]))
            else:
                h = c = cell(inputs, state.h[layer])
            hs.append(h)
            cs.append(c)
            inputs = self.dropout(h) if layer + 1 < len(self.cells) else h
        return DecoderState(torch.stack(hs), torch.stack(cs))

    def _logits(self, embedded: torch.Tensor, h: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Deep output L_o(tanh(E y_{t-1} + L_h h_t + L_z z_t)); works for (B, ·) and (B, T, ·) alike."""
        if not self.config.deep_output:
            return self.out(self.dropout(h))
        return self.out(self.dropout(torch.tanh(embedded + self.out_h(h) + self.out_z(context))))

    def inference_mode_for_context(self) -> str:
        if self.config.attention == "soft" or self.config.hard_inference == "expectation":
            return "expect"
        return "argmax"

    # -- public API ----------------------------------------------------------------------------------------
    def step(self, tokens: torch.Tensor, state: DecoderState, memory: Memory) -> StepOutput:
        """One generation step: previous tokens (B,) → next-word logits (B, V), α (B, L), new state."""
        embedded = self.embedding(tokens)  # (B, E)
        alpha, context, _, _ = self._attend(memory, state, self.inference_mode_for_context())
        state = self._recur(torch.cat([embedded, context], dim=-1), state)
        logits = self._logits(embedded, state.h[-1], context)
        logits[:, list(NEVER_GENERATED)] = float("-inf")  # (B, V)
        return StepOutput(logits, alpha, state)

    def forward(self, features: torch.Tensor, captions: torch.Tensor) -> DecoderOutput:
        """Teacher forcing. features (B, L, C), captions (B, T+1) = <start> w_1 … <end> <pad>… → logits for captions[:, 1:].

        The batch is ordered by caption length once; step t then runs only the captions still running, a
        prefix of that order, so padded steps cost nothing (their outputs are zeros, masked by the loss). The
        attention projection is computed once per image and the vocabulary projection once after the loop.
        """
        targets = (captions[:, 1:] != 0).sum(dim=1)  # (B,) words to predict per caption (<pad> = 0)
        targets, order = targets.sort(descending=True)
        memory, state = self.prepare(features[order])
        embedded = self.embedding(captions[order, :-1])  # (B, T, E)
        B, T = embedded.shape[:2]
        running = (targets.unsqueeze(0) > torch.arange(T, device=targets.device).unsqueeze(1)).sum(1).tolist()  # (T,)
        mode = self._training_context_mode()
        hs, contexts, alphas, log_probs, entropies = [], [], [], [], []
        for t, n in enumerate(running):
            memory, state = Memory(memory.features[:n], memory.projected[:n]), DecoderState(state.h[:, :n], state.c[:, :n])
            alpha, context, log_prob, entropy = self._attend(memory, state, mode)
            state = self._recur(torch.cat([embedded[:n, t], context], dim=-1), state)
            for outputs, value in [(hs, state.h[-1]), (contexts, context), (alphas, alpha), (log_probs, log_prob), (entropies, entropy)]:
                outputs.append(None if value is None else _pad_rows(value, B))
        logits = self._logits(embedded, torch.stack(hs, 1), torch.stack(contexts, 1))  # (B, T, V)
        restore = order.argsort()  # back to the caller's order
        sampled = mode == "sample"
        return DecoderOutput(
            logits[restore],
            torch.stack(alphas, 1)[restore],  # (B, T, L)
            torch.stack(log_probs, 1)[restore] if sampled else None,  # (B, T)
            torch.stack(entropies, 1)[restore] if sampled else None,  # (B, T)
        )

    def _training_context_mode(self) -> str:
        """Hard attention while training: one coin per minibatch picks a sample (p = 1 − expectation_prob)."""
        if self.config.attention == "soft":
            return "expect"
        if not self.training:
            return self.inference_mode_for_context()
        return "expect" if torch.rand(()).item() < self.config.expectation_prob else "sample"


def _pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """(n, ...) → (rows, ...) with zero rows appended: the outputs of captions that have already ended."""
    return torch.cat([x, x.new_zeros(rows - x.size(0), *x.shape[1:])]) if x.size(0) < rows else x
