"""The top-down captioning decoder of Up-Down (Anderson et al. 2018) over a CNN grid: two LSTMs per word.

The attention LSTM reads [E y_{t-1}; v̄; h²_{t-1}] (the word, the mean memory, the language LSTM's last state) and
its new state h¹_t is the attention query, so each word attends with what it knows now rather than with the
previous word's state (Show, Attend and Tell). The language LSTM reads [ẑ_t; h¹_t] and predicts the word from h²_t.
Both states start at zero.

Everything around the step (teacher forcing over the packed real steps, scheduled sampling, the step API that
greedy, sampling and beam search drive, the losses' attention maps) is `CaptionDecoder`'s; this class supplies the
step itself. The decoder state holds the two LSTMs as its two layers: h, c (2, B, H), attention LSTM first.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F

from captioner.models.attention import AdditiveAttention
from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig, DecoderState, Memory
from captioner.models.cells import CELLS


class UpDownWeights(NamedTuple):
    """The attention LSTM's input weights, split by what they read and fused once per decode call."""

    recurrent: torch.Tensor  # (gates, 2H): on [h¹_{t-1}; h²_{t-1}]
    recurrent_bias: torch.Tensor  # (gates,)
    word_side: torch.Tensor  # (gates, E): on the word embedding, once for all steps of a teacher-forced pass
    word_bias: torch.Tensor  # (gates,)


class UpDownDecoder(CaptionDecoder):
    def _build_recurrence(self, cfg: DecoderConfig, D: int) -> None:
        H, E = cfg.hidden_dim, cfg.embed_dim
        self.attention = AdditiveAttention(D, H, cfg.attention_dim, activation=cfg.attention_activation)
        cell = CELLS[cfg.cell]
        self.attention_cell = cell(E + D + H, H)  # [E y_{t-1}; v̄; h²_{t-1}]
        self.language_cell = cell(D + H, H)  # [ẑ_t; h¹_t]

    def step_weights(self) -> UpDownWeights:
        E, D = self.config.embed_dim, self.config.memory_dim or self.config.feature_dim
        w = self.attention_cell
        recurrent = torch.cat([w.weight_hh, w.weight_ih[:, E + D :]], dim=1)  # (gates, H + H)
        return UpDownWeights(recurrent, w.bias_hh, w.weight_ih[:, :E], w.bias_ih)

    def prepare(self, features: torch.Tensor) -> tuple[Memory, DecoderState]:
        """features (B, L, C) → per-image memory (with the mean memory's share of the attention LSTM's gates) and
        zero states for both LSTMs."""
        E, B, H = self.config.embed_dim, features.size(0), self.config.hidden_dim
        memory = self.project_memory(features)  # (B, L, D)
        D = memory.size(-1)
        pooled = F.linear(memory.mean(dim=1), self.attention_cell.weight_ih[:, E : E + D])  # (B, gates): v̄'s share
        zeros = memory.new_zeros(2, B, H)  # (2 LSTMs, B, H)
        return Memory(memory, self.attention.project(memory), self.step_weights(), pooled), DecoderState(zeros, zeros)

    def _advance(self, word_gates: torch.Tensor, state: DecoderState, memory: Memory, mode: str) -> tuple[torch.Tensor, ...]:
        """word_gates (n, gates) = the word's share of the attention LSTM's gates → α, context ẑ_t, new state, log α_s, H(α)."""
        n, images = word_gates.size(0), memory.features.size(0)
        pooled = memory.pooled.repeat_interleave(n // images, dim=0) if n != images else memory.pooled  # (n, gates)
        w = memory.weights
        recurrent = F.linear(torch.cat([state.h[0], state.h[1]], dim=1), w.recurrent, w.recurrent_bias)  # (n, gates)
        h_att, c_att = self._step_cell(word_gates + pooled, recurrent, state.h[0], state.c[0])
        alpha = self.attention.weights(memory.projected, self.attention.query_proj(h_att))  # (n, L)
        context, log_prob, entropy = self._read(memory.features, alpha, mode)
        language = self.language_cell
        input_gates = F.linear(torch.cat([context, h_att], dim=1), language.weight_ih, language.bias_ih)  # (n, gates)
        hidden_gates = F.linear(state.h[1], language.weight_hh, language.bias_hh)
        h_lang, c_lang = self._step_cell(input_gates, hidden_gates, state.h[1], state.c[1])
        state = DecoderState(torch.stack([h_att, h_lang]), torch.stack([c_att, c_lang]))  # (2, n, H)
        return alpha, context, state, log_prob, entropy

    def _fused_loop_applies(self, mode: str) -> bool:
        return False  # the hand-written backward is Show, Attend and Tell's recurrence
