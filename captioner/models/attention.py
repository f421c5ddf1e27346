"""Additive (Bahdanau) attention over a feature grid, and the soft / hard ways of reading a context from it."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


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
        """One glimpse from an already projected query: projected (B, L, A), W_q q (B, A) → α (B, L)."""
        energy = self.act(projected + query_projected.unsqueeze(1))  # (B, L, A)
        return F.linear(energy, self.score.weight[:1], self.score.bias[:1]).squeeze(-1).softmax(dim=-1)  # (B, L)


def expected_context(features: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Soft attention: z = Σ_i α_i a_i.  features (B, L, C), α (B, L) → (B, C)."""
    return torch.bmm(alpha.unsqueeze(1), features).squeeze(1)


def located_context(features: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
    """Hard attention: z = a_s.  features (B, L, C), locations (B,) → (B, C)."""
    index = locations.view(-1, 1, 1).expand(-1, 1, features.size(-1))  # (B, 1, C)
    return features.gather(1, index).squeeze(1)


def sample_locations(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """s ~ Multinomial(α): α (B, L) → locations (B,), log α_s (B,) with a gradient path, entropy (B,)."""
    dist = Categorical(probs=alpha)
    locations = dist.sample()
    return locations, dist.log_prob(locations), dist.entropy()
