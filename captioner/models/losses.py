"""Captioning loss: masked cross-entropy, the doubly stochastic attention penalty, and REINFORCE for hard attention."""

import torch
import torch.nn.functional as F

from captioner.models.caption_decoder import CaptionDecoder, DecoderOutput


def caption_loss(decoder: CaptionDecoder, output: DecoderOutput, captions: torch.Tensor, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """captions (B, T+1) as fed to the decoder; returns {"loss", "nll", "penalty"} (+ "reinforce", "entropy").

    Everything is normalised per real (non-pad) target token, so the terms keep their relative scale
    whatever the caption lengths.
    """
    cfg = decoder.config
    targets = captions[:, 1:]  # (B, T)
    mask = (targets != pad_id).float()  # (B, T)
    n_tokens = mask.sum().clamp(min=1)
    token_nll = F.cross_entropy(output.packed_logits, targets[output.rows, output.steps], reduction="none")  # (N,)
    terms = {"nll": token_nll.sum() / n_tokens, "penalty": attention_penalty(output.alphas, mask, cfg.penalty_reduction)}
    loss = terms["nll"] + cfg.alpha_c * terms["penalty"]
    if output.location_log_probs is not None:
        caption_nll = token_nll.new_zeros(len(captions)).index_add(0, output.rows, token_nll.detach())  # (B,)
        advantage = -caption_nll - _update_baseline(decoder, -caption_nll)  # reward log p(y | s, a), (B,)
        log_p_locations = (output.location_log_probs * mask).sum(dim=1)  # (B,)
        terms["reinforce"] = -(advantage * log_p_locations).sum() / n_tokens
        terms["entropy"] = (output.entropy * mask).sum() / n_tokens
        loss = loss + cfg.reinforce_weight * terms["reinforce"] - cfg.entropy_weight * terms["entropy"]
    return {"loss": loss, **terms}


def attention_penalty(alphas: torch.Tensor, mask: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """λ-free Σ_i (1 − Σ_t α_t,i)²: alphas (B, T, L), mask (B, T); padded steps do not count. Mean over B."""
    per_location = (1.0 - (alphas * mask.unsqueeze(-1)).sum(dim=1)) ** 2  # (B, L)
    per_caption = per_location.sum(dim=1) if reduction == "sum" else per_location.mean(dim=1)  # (B,)
    return per_caption.mean()


def _update_baseline(decoder: CaptionDecoder, reward: torch.Tensor) -> torch.Tensor:
    """b ← decay·b + (1 − decay)·mean(reward), updated only while training; returns b before the update."""
    baseline = decoder.reward_baseline.clone()
    if decoder.training:
        decay = decoder.config.baseline_decay
        decoder.reward_baseline.mul_(decay).add_((1 - decay) * reward.mean())
    return baseline
