"""Additive (Bahdanau) attention over a feature grid, and the soft / hard ways of reading a context from it.

The step-wise functions take the grid once per image and any whole number g of query rows per image, image-major
(rows i·g … i·g + g − 1 read image i): beam search and SCST sampling run k rows per image without copying the
grid k times, and each image's grid is read once per step for all of them.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
IN_PLACE = {"tanh": torch.tanh_, "relu": torch.relu_}  # on the freshly computed energy: one (n, L, A) buffer, not two


class AdditiveAttention(nn.Module):
    """α = softmax_L( w · act(W_a a_i + W_q q) ), with one score head per glimpse.

    The feature side `W_a a_i` does not depend on the query, so callers compute it once per image with
    `project` and pass it to every step: that is what makes per-word attention cheap.
    """

    def __init__(self, feature_dim: int, query_dim: int, attention_dim: int, glimpses: int = 1, activation: str = "tanh") -> None:
        super().__init__()
        self.feature_proj = nn.Linear(feature_dim, attention_dim)
        self.query_proj = nn.Linear(query_dim, attention_dim, bias=False)
        self.act = ACTIVATIONS[activation]()
        self.activation = activation
        self.score = nn.Linear(attention_dim, glimpses)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(B, L, C) → (B, L, A), once per image."""
        return self.feature_proj(features)

    def forward(self, projected: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """projected (B, L, A), query (B, Q) → α (B, G, L), each row summing to 1."""
        energy = self.act(projected + self.query_proj(query).unsqueeze(1))  # (B, L, A)
        scores = self.score(energy).transpose(1, 2)  # (B, G, L)
        return scores.softmax(dim=-1)

    def weights(self, projected: torch.Tensor, query_projected: torch.Tensor) -> torch.Tensor:
        """One glimpse from an already projected query: projected (I, L, A), W_q q (I·g, A) → α (I·g, L)."""
        I, L, A = projected.shape
        # contiguous: a strided query (a slice of a fused matrix multiply) would make the sum below come out in a
        # permuted, non-contiguous layout, several times slower to write, activate and score
        query = query_projected.contiguous().view(I, -1, 1, A)  # (I·g, A) → (I, g, 1, A)
        energy = IN_PLACE[self.activation](projected.unsqueeze(1) + query)  # (I, g, L, A)
        scores = F.linear(energy, self.score.weight[:1], self.score.bias[:1])  # (I, g, L, 1)
        return scores.view(-1, L).softmax(dim=-1)  # (I, g, L, 1) → (I·g, L)


def expected_context(features: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Soft attention: z = Σ_i α_i a_i.  features (I, L, C), α (I·g, L) → (I·g, C)."""
    I, L, C = features.shape
    return torch.bmm(alpha.view(I, -1, L), features).view(-1, C)  # (I, g, L) @ (I, L, C) → (I, g, C) → (I·g, C)


def located_context(features: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
    """Hard attention: z = a_s.  features (I, L, C), locations (I·g,) → (I·g, C)."""
    I, C = features.size(0), features.size(-1)
    index = locations.view(I, -1, 1).expand(-1, -1, C)  # (I·g,) → (I, g, C)
    return features.gather(1, index).view(-1, C)  # (I, g, C) → (I·g, C)


def sample_locations(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """s ~ Multinomial(α): α (B, L) → locations (B,), log α_s (B,) with a gradient path, entropy (B,)."""
    dist = Categorical(probs=alpha)
    locations = dist.sample()
    return locations, dist.log_prob(locations), dist.entropy()
