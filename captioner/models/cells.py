"""Recurrent cells as the decoder runs them: parameters live in `nn.LSTMCell`/`nn.GRUCell` (so model files keep
their names), but the decoder computes the gate pre-activations itself, in fused matrix multiplies, and calls
the pointwise update below with them."""

from collections.abc import Callable

import torch
from torch import nn

CELLS: dict[str, type[nn.RNNCellBase]] = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}

# (input gates (n, k·H), hidden gates (n, k·H), h (n, H), c (n, H)) → (h', c')
PointwiseStep = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def lstm_step(input_gates: torch.Tensor, hidden_gates: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM update from W_ih x + b_ih and W_hh h + b_hh, in PyTorch's gate order (input, forget, cell, output)."""
    i, f, g, o = (input_gates + hidden_gates).chunk(4, dim=1)  # (n, H) each
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_step(input_gates: torch.Tensor, hidden_gates: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """GRU update, PyTorch's gate order (reset, update, new); the reset gate scales only the hidden share of `new`."""
    ir, iz, in_ = input_gates.chunk(3, dim=1)  # (n, H) each
    hr, hz, hn = hidden_gates.chunk(3, dim=1)
    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    h = (1 - z) * torch.tanh(in_ + r * hn) + z * h
    return h, h


STEPS: dict[str, PointwiseStep] = {"lstm": lstm_step, "gru": gru_step}
