import json

import pytest
import torch

from captioner.cli import main
from captioner.inference import Captioner
from captioner.training.runner import train
from helpers import tiny_caption_config


@pytest.fixture(scope="module")
def tiny_model(shapes, tmp_path_factory):
    """One short training shared by the tests that only need some working model file."""
    return train(tiny_caption_config(shapes, tmp_path_factory.mktemp("run"), "trainer.max_epochs=4")).model_path


def test_training_exports_a_self_contained_model(shapes, tiny_model):
    assert tiny_model.is_file()
    captioner = Captioner.load(tiny_model)
    caption = captioner.caption([shapes / "images" / json.loads((shapes / "captions_val.json").read_text())["images"][0]["file_name"]])[0]
    assert caption.alphas.shape[1] == captioner.encoder.num_locations
    torch.testing.assert_close(torch.from_numpy(caption.alphas).sum(1), torch.ones(len(caption.alphas)))


def test_save_then_load_gives_identical_outputs(shapes, tiny_model, tmp_path):
    first = Captioner.load(tiny_model)
    first.save(tmp_path / "copy.pt")
    second = Captioner.load(tmp_path / "copy.pt")
    images = sorted((shapes / "images").iterdir())[:3]
    a, b = first.caption(images, beam_size=2), second.caption(images, beam_size=2)
    assert [c.text for c in a] == [c.text for c in b]
    for x, y in zip(a, b):
        torch.testing.assert_close(torch.from_numpy(x.alphas), torch.from_numpy(y.alphas))


def test_training_run_refuses_to_clobber_and_resumes(shapes, tmp_path):
    config = tiny_caption_config(shapes, tmp_path / "run")
    first = train(config)
    try:
        train(config)
    except Exception as e:
        assert "already holds a training run" in str(e)
    else:
        raise AssertionError("a second run into the same out_dir must be refused")
    resumed = train(tiny_caption_config(shapes, tmp_path / "run", "trainer.max_epochs=2"), resume=True)
    assert resumed.global_step == 2 * first.global_step
    assert "val/bleu4" in resumed.metrics


def test_caption_cli_prints_a_caption_and_writes_the_attention_figure(shapes, tiny_model, tmp_path, capsys):
    model = tiny_model
    image = sorted((shapes / "images").iterdir())[0]
    code = main(["caption", str(image), "--checkpoint", str(model), "--beam", "2", "--attention", str(tmp_path / "att")])
    assert code == 0
    assert capsys.readouterr().out.strip()
    figures = list((tmp_path / "att").glob("*.png"))
    assert len(figures) == 1 and figures[0].stat().st_size > 1000


def test_caption_cli_reports_bad_images_and_goes_on(shapes, tiny_model, tmp_path, capsys):
    model = tiny_model
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    good = sorted((shapes / "images").iterdir())[0]
    code = main(["caption", str(bad), str(good), "--checkpoint", str(model)])
    captured = capsys.readouterr()
    assert code == 1
    assert f"{bad}: not an image file" in captured.err
    assert f"{good}: " in captured.out


def test_checkpoint_with_another_vocabulary_is_explained(tiny_model, tmp_path):
    from captioner.errors import CaptionerError

    payload = torch.load(tiny_model, weights_only=True)
    payload["vocab"] = payload["vocab"] + ["extra"]
    torch.save(payload, tmp_path / "other_vocab.pt")
    with pytest.raises(CaptionerError, match="decoder expects vocabulary .* file has vocabulary"):
        Captioner.load(tmp_path / "other_vocab.pt")
    payload = torch.load(tiny_model, weights_only=True)
    payload["encoder"]["name"] = "nonexistent_cnn"
    torch.save(payload, tmp_path / "other_encoder.pt")
    with pytest.raises(CaptionerError, match="unknown encoder 'nonexistent_cnn'"):
        Captioner.load(tmp_path / "other_encoder.pt")


def test_evaluate_cli_writes_results_and_scores(shapes, tiny_model, tmp_path, capsys):
    args = ["evaluate", "--checkpoint", str(tiny_model), "--annotations", str(shapes / "captions_val.json"),
            "--images", str(shapes / "images"), "--beam", "2", "--workers", "0", "--out", str(tmp_path / "eval")]
    assert main(args) == 0
    assert "CIDEr-D" in capsys.readouterr().out
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert {"image_id", "caption"} == set(results[0]) and len(results) == 8
    assert "BLEU-4" in json.loads((tmp_path / "eval" / "scores.json").read_text())["scores"]
    assert main(args) == 1  # refuses to overwrite without --force


def test_hard_attention_model_captions_by_argmax_or_expected_context(shapes, tiny_model, tmp_path, capsys):
    hard = train(tiny_caption_config(shapes, tmp_path / "hard", "model.attention=hard", "trainer.limit_train_batches=2",
                                     "trainer.limit_val_batches=1")).model_path
    captioner = Captioner.load(hard)
    assert captioner.decoder.inference_mode_for_context() == "argmax"  # the most likely location
    assert captioner.use_hard_inference("expectation").decoder.inference_mode_for_context() == "expect"
    image = sorted((shapes / "images").iterdir())[0]
    assert main(["caption", str(image), "--checkpoint", str(hard), "--hard-inference", "expectation", "--attention", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() and (tmp_path / f"{image.stem}_attention.png").is_file()
    assert main(["caption", str(image), "--checkpoint", str(tiny_model), "--hard-inference", "expectation"]) == 1
    assert "applies to hard-attention models; this one uses soft attention" in capsys.readouterr().err
