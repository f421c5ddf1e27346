"""The most-read PyTorch Show-Attend-Tell tutorial's decoder design, rebuilt here only as a speed baseline.

`TutorialDecoder` follows the design of sgrvinod's `DecoderWithAttention`: ReLU additive attention whose
encoder-side projection is recomputed at every step, a vector gate f_β, an `LSTMCell` over [embedding; context],
a linear output layer applied step by step, and the batch shrunk at every step to the captions still running
(sorted by length first). `tutorial_training_step` is its training step: cross-entropy over the real words
plus the doubly stochastic penalty, backward, Adam.
"""

import torch
import torch.nn.functional as F
from torch import nn


class TutorialDecoder(nn.Module):
    def __init__(self, vocab_size: int, feature_dim: int, embed_dim: int, hidden_dim: int, attention_dim: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.encoder_att = nn.Linear(feature_dim, attention_dim)
        self.decoder_att = nn.Linear(hidden_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.init_h = nn.Linear(feature_dim, hidden_dim)
        self.init_c = nn.Linear(feature_dim, hidden_dim)
        self.f_beta = nn.Linear(hidden_dim, feature_dim)
        self.decode_step = nn.LSTMCell(embed_dim + feature_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_dim, vocab_size)
        self.vocab_size = vocab_size

    def attend(self, features: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (b, L, C), h (b, H) → context (b, C), α (b, L); the grid is re-projected on every call."""
        energy = F.relu(self.encoder_att(features) + self.decoder_att(h).unsqueeze(1))  # (b, L, A)
        alpha = self.full_att(energy).squeeze(2).softmax(dim=1)  # (b, L)
        return (features * alpha.unsqueeze(2)).sum(dim=1), alpha

    def forward(self, features: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """features (B, L, C), captions (B, T+1), lengths (B,) incl. <start>/<end> →
        logits (B, T, V), alphas (B, T, L), decode lengths (B,), sort order (B,)."""
        decode_lengths, order = (lengths - 1).sort(descending=True)
        features, captions = features[order], captions[order]
        embedded = self.embedding(captions)  # (B, T+1, E)
        mean = features.mean(dim=1)  # (B, C)
        h, c = self.init_h(mean), self.init_c(mean)  # (B, H) each
        B, T, L = features.size(0), int(decode_lengths[0]), features.size(1)
        logits = features.new_zeros(B, T, self.vocab_size)
        alphas = features.new_zeros(B, T, L)
        for t in range(T):
            n = int((decode_lengths > t).sum())  # captions still running at step t
            context, alpha = self.attend(features[:n], h[:n])
            context = torch.sigmoid(self.f_beta(h[:n])) * context  # (n, C)
            h, c = self.decode_step(torch.cat([embedded[:n, t], context], dim=1), (h[:n], c[:n]))
            logits[:n, t] = self.fc(self.dropout(h))
            alphas[:n, t] = alpha
        return logits, alphas, decode_lengths, order


def tutorial_training_step(decoder: TutorialDecoder, optimizer: torch.optim.Optimizer, features: torch.Tensor,
                           captions: torch.Tensor, lengths: torch.Tensor, alpha_c: float = 1.0) -> torch.Tensor:
    """One training step as the tutorial takes it: masked cross-entropy + λ·Σ_i(1 − Σ_t α)², backward, Adam."""
    logits, alphas, decode_lengths, order = decoder(features, captions, lengths)
    targets = captions[order, 1:]  # (B, T)
    mask = torch.arange(logits.size(1)).unsqueeze(0) < decode_lengths.unsqueeze(1)  # (B, T)
    loss = F.cross_entropy(logits[mask], targets[mask]) + alpha_c * ((1.0 - alphas.sum(dim=1)) ** 2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()
