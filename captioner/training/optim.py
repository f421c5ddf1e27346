"""AdamW with separate encoder/decoder learning rates and a warm-up + cosine schedule, shared by all tasks."""

import math

import torch
from torch import nn

from captioner.config import OptimConfig


def build_optimizer(head: nn.Module, encoder: nn.Module, config: OptimConfig, total_steps: int) -> dict:
    """Lightning's `configure_optimizers` dict: head params at `lr`, trainable encoder params at `encoder_lr`."""
    groups = [{"params": [p for p in head.parameters() if p.requires_grad], "lr": config.lr}]
    encoder_params = [p for p in encoder.parameters() if p.requires_grad]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": config.encoder_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config, max(total_steps, 1)))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def _lr_factor(config: OptimConfig, total_steps: int):
    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        if config.schedule == "constant":
            return warm
        progress = min(1.0, step / total_steps)
        return warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))  # floor at 5% of the peak

    return factor
