"""The model that ships inside the package: trained on real COCO photos, it must describe a real photo."""

from pathlib import Path

import torch

from captioner.cli import main
from captioner.inference import SHIPPED_CHECKPOINT, Captioner

EXAMPLE = Path(__file__).parents[1] / "docs" / "example.jpg"  # COCO val 85772, CC BY 2.0 (credit in the README)


def test_the_shipped_model_is_small_and_loads_without_pickled_code():
    assert SHIPPED_CHECKPOINT.stat().st_size < 20 * 2**20
    payload = torch.load(SHIPPED_CHECKPOINT, map_location="cpu", weights_only=True)  # refuses pickled code
    assert payload["encoder_state"] is None  # the encoder's weights come from the installed package
    assert {t.dtype for t in payload["decoder_state"].values() if t.is_floating_point()} == {torch.float16}
    captioner = Captioner.load()
    assert captioner.encoder.describe()["name"] == "efficientnet_lite0_448"
    assert 1000 < len(captioner.vocab) < 5000


def test_caption_with_no_flags_describes_a_real_photo(capsys):
    assert main(["caption", str(EXAMPLE)]) == 0
    caption = capsys.readouterr().out.strip()
    words = set(caption.split())
    assert {"tennis"} & words and words & {"man", "person", "boy", "player"}, caption
