"""A frozen encoder at inference runs with its BatchNorms folded into the convolutions: the same grid to float
rounding, its own weights and state_dict untouched, folded again when a weight changes, never while training."""

import pytest
import torch
from torch import nn

from captioner.encoders import ENCODERS
from captioner.encoders.folding import folded_copy


def encoder(name: str) -> nn.Module:
    return ENCODERS.get(name)(pretrained=False, image_size=64).eval()


@pytest.mark.parametrize("name", ["tiny_cnn", "efficientnet_lite0", "resnet50"])
def test_folded_inference_gives_the_grid_of_the_plain_trunk(name):
    torch.manual_seed(0)
    model = encoder(name)
    for module in model.modules():  # statistics other than the initial 0 / 1, so folding has something to fold
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    keys = set(model.state_dict())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        plain = model.feature_map(images).flatten(2).transpose(1, 2)  # (B, C, h, w) → (B, L, C)
        folded = model(images)
    assert model.__dict__["_folded"][1] is not None  # it did fold
    torch.testing.assert_close(folded, plain, rtol=1e-4, atol=1e-4)
    assert set(model.state_dict()) == keys  # the folded copy is not a submodule


def test_a_changed_weight_is_folded_again():
    model = encoder("tiny_cnn")
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(images)
        next(model.parameters()).mul_(2)  # as an optimiser step or load_state_dict would
        after = model(images)
        plain = model.feature_map(images).flatten(2).transpose(1, 2)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, plain, rtol=1e-4, atol=1e-4)


def test_training_and_autograd_run_the_trunk_itself():
    model = encoder("tiny_cnn")
    out = model(torch.randn(1, 3, 64, 64))  # grad enabled: the unfolded trunk, whose weights get the gradient
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert "_folded" not in model.__dict__


def test_a_norm_that_does_not_read_the_conv_before_it_is_not_folded():
    class Crossed(nn.Module):  # bn follows conv in registration order but normalises the input instead
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)
            self.bn.running_mean.fill_(0.5)
            self.bn.running_var.fill_(4.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + self.bn(x)

    assert folded_copy(Crossed().eval(), torch.randn(1, 3, 8, 8)) is None
    assert folded_copy(nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU()), torch.randn(1, 3, 8, 8)) is None  # no pair
