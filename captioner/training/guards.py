"""Guards shared by the LightningModules: stop on a non-finite loss, report images that could not be read."""

import torch
from pytorch_lightning.utilities import rank_zero_warn

from captioner.errors import CaptionerError


def check_finite(loss: torch.Tensor, step: int) -> torch.Tensor:
    """Raise before the optimiser step (and any checkpoint) when the loss is NaN or infinite."""
    if not torch.isfinite(loss):
        raise CaptionerError(f"training stopped: the loss became {loss.item()} at step {step}; no checkpoint was written for it "
                             "(lower optim.lr or raise optim.grad_clip)")
    return loss


def report_skipped(module, batch: dict) -> bool:
    """Warn about each unreadable image of the batch and count them; False if nothing is left to train on."""
    for reason in batch.get("skipped", []):
        module.skipped_images = getattr(module, "skipped_images", 0) + 1
        rank_zero_warn(f"skipped unreadable image ({module.skipped_images} so far): {reason}")
    return any(key in batch for key in ("images", "features"))
