"""Attention weights scored block by block without autograd (inference on a CPU) match the plain, differentiable
computation, for both activations and however the images fall into blocks."""

import pytest
import torch

from captioner.models import attention
from captioner.models.attention import AdditiveAttention


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("block_bytes", [1, 1 << 20])  # one image per block; all of them in one
def test_blockwise_weights_equal_the_differentiable_ones(activation, block_bytes, monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setattr(attention, "BLOCK_BYTES", block_bytes)
    attend = AdditiveAttention(feature_dim=12, query_dim=10, attention_dim=8, activation=activation)
    features, hidden = torch.randn(5, 49, 12), torch.randn(15, 10)  # 5 images, 3 query rows (beams) each
    projected, query = attend.project(features), attend.query_proj(hidden)  # (5, 49, 8), (15, 8)

    with torch.no_grad():
        blockwise = attend.weights(projected, query)  # (15, 49)
    differentiable = attend.weights(projected.detach().requires_grad_(), query.detach())

    assert blockwise.shape == (15, 49)
    torch.testing.assert_close(blockwise, differentiable.detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(blockwise.sum(dim=1), torch.ones(15))
