"""Averaging model files (model soups): the weights are the mean, the rest must describe one model."""

import pytest
import torch

from captioner.benchmarks.workloads import write_model_file
from captioner.checkpoint import load_model_file
from captioner.cli import main
from captioner.config import EncoderConfig
from captioner.errors import CaptionerError
from captioner.inference import Captioner
from captioner.soup import save_soup

TINY_ENCODER = EncoderConfig(name="tiny_cnn", pretrained=False, image_size=64)
TINY_DECODER = {"embed_dim": 16, "hidden_dim": 32, "attention_dim": 16}


def tiny_model(path, seed: int, vocab_words: int = 40):
    """One start (seed 0), then a seed-dependent nudge to the decoder: a stand-in for one of its fine-tunes."""
    torch.manual_seed(0)
    path = write_model_file(path, TINY_ENCODER, TINY_DECODER, vocab_words=vocab_words)
    payload = load_model_file(path, "caption")
    noise = torch.Generator().manual_seed(seed)
    payload["decoder_state"] = {name: w + 0.1 * torch.randn(w.shape, generator=noise).to(w.dtype) if w.is_floating_point() else w
                                for name, w in payload["decoder_state"].items()}
    torch.save(payload, path)
    return path


@pytest.fixture
def two_runs(tmp_path):
    return tiny_model(tmp_path / "a.pt", seed=1), tiny_model(tmp_path / "b.pt", seed=2)


def test_the_soup_holds_the_mean_of_the_weights_and_captions(two_runs, tmp_path):
    a, b = (load_model_file(p, "caption") for p in two_runs)
    soup_path = save_soup(tmp_path / "soup.pt", two_runs)
    soup = load_model_file(soup_path, "caption")
    for name, weight in soup["decoder_state"].items():
        expected = (a["decoder_state"][name].float() + b["decoder_state"][name].float()) / 2
        assert weight.dtype == a["decoder_state"][name].dtype
        torch.testing.assert_close(weight.float(), expected, atol=1e-3, rtol=1e-3)
    assert soup["vocab"] == a["vocab"]
    assert [i["file"] for i in soup["meta"]["ingredients"]] == ["a.pt", "b.pt"]
    [caption] = Captioner.load(soup_path).caption(torch.rand(3, 64, 64))
    assert isinstance(caption.text, str)


def test_a_model_averaged_with_itself_captions_as_it_did(two_runs, tmp_path):
    soup_path = save_soup(tmp_path / "soup.pt", [two_runs[0], two_runs[0]])
    image = torch.rand(3, 64, 64)
    [before], [after] = Captioner.load(two_runs[0]).caption(image, beam_size=2), Captioner.load(soup_path).caption(image, beam_size=2)
    assert before.text == after.text and before.alphas.tolist() == after.alphas.tolist()


def test_files_of_different_models_are_refused_in_one_line(two_runs, tmp_path):
    other_vocab = tiny_model(tmp_path / "c.pt", seed=3, vocab_words=50)
    with pytest.raises(CaptionerError, match=r"cannot average .*c\.pt with .*a\.pt: their (decoder_config|vocab) differ"):
        save_soup(tmp_path / "soup.pt", [two_runs[0], other_vocab])
    with pytest.raises(CaptionerError, match="at least two model files"):
        save_soup(tmp_path / "soup.pt", [two_runs[0]])
    with pytest.raises(CaptionerError, match="checkpoint not found"):
        save_soup(tmp_path / "soup.pt", [two_runs[0], tmp_path / "missing.pt"])
    assert not (tmp_path / "soup.pt").exists()


def test_the_cli_writes_the_soup_and_never_overwrites_without_force(two_runs, tmp_path, capsys):
    out = tmp_path / "soup.pt"
    out.write_text("user data")
    assert main(["average", str(out), *map(str, two_runs)]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err and out.read_text() == "user data"
    assert main(["average", str(out), *map(str, two_runs), "--force", "--recipe", "two seeds"]) == 0
    assert "averaged 2 model files" in capsys.readouterr().out
    assert load_model_file(out, "caption")["meta"]["recipe"] == "uniform average of the weights of 2 model files (a model soup): two seeds"


def test_runs_that_differ_only_in_their_training_loss_still_average(two_runs, tmp_path):
    grounded = load_model_file(two_runs[1], "caption")
    grounded["decoder_config"]["attention_supervision"] = 1.0  # trained with supervised attention: same network
    torch.save(grounded, two_runs[1])
    soup = load_model_file(save_soup(tmp_path / "soup.pt", two_runs), "caption")
    assert soup["decoder_config"]["attention_supervision"] == 0.0  # the first file's settings
    wider = load_model_file(two_runs[1], "caption")
    wider["decoder_config"]["hidden_dim"] = 64  # another network
    torch.save(wider, two_runs[1])
    with pytest.raises(CaptionerError, match="their decoder_config differ"):
        save_soup(tmp_path / "other.pt", two_runs)


def test_a_file_written_before_an_encoder_setting_existed_averages_with_one_after(two_runs, tmp_path):
    older = load_model_file(two_runs[1], "caption")
    del older["encoder"]["fine_tuned"]  # as model files were before encoder.fine_tuned
    torch.save(older, two_runs[1])
    assert load_model_file(save_soup(tmp_path / "soup.pt", two_runs), "caption")["encoder"]["fine_tuned"] is False
