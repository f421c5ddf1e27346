"""Captioning loss: masked cross-entropy, the doubly stochastic attention penalty, and REINFORCE for hard attention."""

import torch
import torch.nn.functional as F

from captioner.models.caption_decoder import CaptionDecoder, DecoderOutput


def caption_loss(
    decoder: CaptionDecoder, output: DecoderOutput, captions: torch.Tensor, pad_id: int = 0,
    grounding: torch.Tensor | None = None, grounding_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """captions (B, T+1) as fed to the decoder; returns {"loss", "nll", "penalty"} (+ "reinforce", "entropy",
    and "grounding" when per-word grounding targets (B, T, L) with their mask (B, T) are given).

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
    if grounding is not None:  # logged even at λ = 0, so runs with and without supervision compare
        terms["grounding"] = grounding_loss(output.alphas, grounding, grounding_mask, cfg.attention_supervision_loss)
        loss = loss + cfg.attention_supervision * terms["grounding"]
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


def grounding_loss(alphas: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, form: str = "mass") -> torch.Tensor:
    """Supervised attention (Liu et al. 2017), λ-free: alphas (B, T, L), target (B, T, L) the coverage m of each
    word's boxes per location, mask (B, T) the words that have boxes (default: rows of target that are not all
    zero). Mean over those words of

      mass:          −log Σ_i α_t,i · m_i             (all of the word's attention inside its boxes, anywhere there)
      cross_entropy: −Σ_i q_i log α_t,i, q = m / Σ m  (Liu et al.: spread like the box map)

    Zero (with a gradient path) when no word has boxes.
    """
    mask = target.sum(dim=-1) > 0 if mask is None else mask  # (B, T)
    if form == "mass":
        mass = (alphas * target).sum(dim=-1)  # (B, T)
        per_word = -torch.log(torch.where(mask, mass, torch.ones_like(mass)).clamp(min=1e-6))  # (B, T)
    else:
        q = target / target.sum(dim=-1, keepdim=True).clamp(min=1e-6)  # (B, T, L)
        per_word = -(q * torch.log(alphas.clamp(min=1e-8))).sum(dim=-1)  # (B, T)
    weights = mask.float()
    return (per_word * weights).sum() / weights.sum().clamp(min=1)


def _update_baseline(decoder: CaptionDecoder, reward: torch.Tensor) -> torch.Tensor:
    """b ← decay·b + (1 − decay)·mean(reward), updated only while training; returns b before the update."""
    baseline = decoder.reward_baseline.clone()
    if decoder.training:
        decay = decoder.config.baseline_decay
        decoder.reward_baseline.mul_(decay).add_((1 - decay) * reward.mean())
    return baseline
