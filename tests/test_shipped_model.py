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
    assert captioner.consensus is not None and captioner.consensus.df  # statistics of its training captions, for --consensus


def test_caption_with_no_flags_describes_a_real_photo(capsys):
    assert main(["caption", str(EXAMPLE)]) == 0
    caption = capsys.readouterr().out.strip()
    words = set(caption.split())
    assert {"tennis"} & words and words & {"man", "person", "boy", "player"}, caption


def test_the_shipped_answerer_is_small_float16_on_the_shipped_encoder_settings():
    from captioner.vqa_inference import SHIPPED_ANSWERER, VQAAnswerer

    assert SHIPPED_ANSWERER.stat().st_size <= 15 * 2**20
    payload = torch.load(SHIPPED_ANSWERER, map_location="cpu", weights_only=True)
    assert payload["format"] == "captioner/vqa" and payload["encoder_state"] is None  # no encoder weights inside
    assert {t.dtype for t in payload["model_state"].values() if t.is_floating_point()} == {torch.float16}
    answerer = VQAAnswerer.load()
    assert answerer.encoder.describe()["name"] == "efficientnet_lite0_448" and answerer.grid_size == (14, 14)  # the shipped encoder settings


def test_the_shipped_models_share_one_encoder_pass():
    from captioner.pipeline import check_same_encoder
    from captioner.vqa_inference import VQAAnswerer

    check_same_encoder(Captioner.load(), VQAAnswerer.load())  # both read efficientnet_lite0_448's 14×14 grid


def test_ask_with_no_checkpoint_answers_about_a_real_photo(capsys):
    assert main(["ask", str(EXAMPLE), "how many people are in the picture?", "--top-k", "3"]) == 0
    best, probability = capsys.readouterr().out.splitlines()[0].split("\t")
    assert best == "1" and float(probability) > 0.3  # one tennis player (COCO val photo, not trained on)
    assert main(["ask", str(EXAMPLE), "what sport is this?", "--top-k", "1", "--caption"]) == 0
    caption, answer = capsys.readouterr().out.splitlines()
    assert caption.startswith("caption: ") and "tennis" in caption and answer.startswith("tennis\t")
