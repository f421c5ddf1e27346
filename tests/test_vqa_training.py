import json
from pathlib import Path

import pytest
import torch

from captioner.cli import main
from captioner.config import RunConfig, load_config
from captioner.errors import CaptionerError
from captioner.inference import Captioner
from captioner.models.vqa_reasoning import REASONERS
from captioner.pipeline import check_same_encoder, describe, share_encoder
from captioner.training.runner import train
from captioner.vqa_inference import VQAAnswerer
from helpers import CONFIGS, tiny_caption_config


def tiny_vqa_config(shapes: Path, out_dir: Path, *overrides: str) -> RunConfig:
    return load_config(CONFIGS / "vqa_tiny.yaml", [*shapes_overrides(shapes), f"trainer.out_dir={out_dir}", *overrides])


def shapes_overrides(shapes: Path) -> list[str]:
    """configs/vqa_tiny.yaml's data paths pointed at a generated shapes folder."""
    return [
        f"data.train_questions={shapes / 'vqa_train_questions.json'}",
        f"data.train_annotations={shapes / 'vqa_train_annotations.json'}",
        f"data.val_questions={shapes / 'vqa_val_questions.json'}",
        f"data.val_annotations={shapes / 'vqa_val_annotations.json'}",
        f"data.images_dir={shapes / 'images'}",
        f"data.train_images_index={shapes / 'captions_train.json'}",
        f"data.val_images_index={shapes / 'captions_val.json'}",
    ]


@pytest.fixture(scope="module")
def vqa_run(shapes, tmp_path_factory):
    """One short training shared by every test that needs some working VQA model file."""
    return train(tiny_vqa_config(shapes, tmp_path_factory.mktemp("vqa_run"), "trainer.max_epochs=3"))


@pytest.fixture(scope="module")
def image(shapes) -> Path:
    return sorted((shapes / "images").iterdir())[0]


def test_training_exports_a_vqa_model_and_its_accuracy(vqa_run):
    assert vqa_run.model_path.name == "model.pt" and vqa_run.model_path.is_file()
    metrics = json.loads((vqa_run.model_path.parent / "metrics.json").read_text())["metrics"]
    assert 0 <= metrics["val/accuracy"] <= 100  # the official VQA accuracy, in percent
    assert {"val/accuracy_yes_no", "val/accuracy_number", "val/accuracy_other", "best_val/accuracy"} <= set(metrics)
    answerer = VQAAnswerer.load(vqa_run.model_path)
    assert answerer.model.config.num_answers == len(answerer.answer_vocab) <= 32  # data.num_answers in vqa_tiny.yaml


def test_train_command_runs_from_a_feature_cache(shapes, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["extract-features", "--annotations", str(shapes / "captions_train.json"), str(shapes / "captions_val.json"),
                 "--images", str(shapes / "images"), "--out", str(cache), "--encoder", "tiny_cnn", "--image-size", "64",
                 "--workers", "0"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--config", str(CONFIGS / "vqa_tiny.yaml"), *shapes_overrides(shapes),
                 f"data.features_dir={cache}", f"trainer.out_dir={run}"]) == 0
    assert "model written to" in capsys.readouterr().out
    assert (run / "model.pt").is_file()
    assert "val/accuracy" in json.loads((run / "metrics.json").read_text())["metrics"]


def test_ask_prints_ranked_answers_and_writes_the_attention_figure(vqa_run, image, tmp_path, capsys):
    figure = tmp_path / "attention.png"
    code = main(["ask", str(image), "what color is the circle?", "--checkpoint", str(vqa_run.model_path),
                 "--top-k", "3", "--attention", str(figure)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    answers = [line.split("\t") for line in lines]  # "answer<TAB>probability", best first
    probabilities = [float(p) for _, p in answers]
    assert len(answers) == 3 and all(0 <= p <= 1 for p in probabilities) and probabilities == sorted(probabilities, reverse=True)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 1000


def test_ask_explains_a_bad_image_in_one_line(vqa_run, tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    assert main(["ask", str(bad), "what color is the circle?", "--checkpoint", str(vqa_run.model_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert f"{bad}: not an image file" in captured.err


def test_ask_answers_for_every_image_of_a_folder_and_skips_the_rest(vqa_run, shapes, tmp_path, capsys):
    import shutil

    folder = tmp_path / "album"
    folder.mkdir()
    for path in sorted((shapes / "images").iterdir())[:2]:
        shutil.copy(path, folder / path.name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "zz_cut.png").write_bytes(next(folder.glob("*.png")).read_bytes()[:100])  # found, then fails to decode
    code = main(["ask", str(folder), "what color is the circle?", "--checkpoint", str(vqa_run.model_path),
                 "--top-k", "2", "--attention", str(tmp_path / "figures")])
    assert code == 1  # notes.txt was skipped
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(p) for p in sorted(folder.glob("*.png"))[:2]]
    assert f"captioner ask: skipped {folder / 'notes.txt'}: not an image file" in captured.err
    assert f"captioner ask: skipped {folder / 'zz_cut.png'}: " in captured.err
    assert len(list((tmp_path / "figures").glob("*_attention.png"))) == 2


def test_ask_refuses_an_empty_question(vqa_run, image, capsys):
    assert main(["ask", str(image), "  ", "--checkpoint", str(vqa_run.model_path)]) == 1
    assert "the question is empty" in capsys.readouterr().err


@pytest.fixture(scope="module")
def caption_model(shapes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("caption")
    return train(tiny_caption_config(shapes, out, "trainer.limit_train_batches=1", "trainer.limit_val_batches=1")).model_path


def test_ask_refuses_a_captioning_model_and_caption_refuses_a_vqa_model(vqa_run, caption_model, image, capsys):
    assert main(["ask", str(image), "what color is the circle?", "--checkpoint", str(caption_model)]) == 1
    assert f"{caption_model} is a caption model, not a vqa model" in capsys.readouterr().err
    assert main(["caption", str(image), "--checkpoint", str(vqa_run.model_path)]) == 1
    err = capsys.readouterr().err
    assert f"{vqa_run.model_path} is a vqa model, not a caption model" in err and err.count("\n") == 1


def test_ask_refuses_a_question_of_only_unknown_words(vqa_run, image, capsys):
    assert main(["ask", str(image), "¿qué tal, señor?", "--checkpoint", str(vqa_run.model_path)]) == 1
    err = capsys.readouterr().err
    assert "none of the words of '¿qué tal, señor?' is known to this model" in err and err.count("\n") == 1
    answerer = VQAAnswerer.load(vqa_run.model_path)
    with pytest.raises(CaptionerError, match="the question is empty"):
        answerer.ask(image, "?!")
    assert answerer.ask(image, "what colour is the zorblax circle?").answers  # some known words: answered


def test_one_encoder_pass_serves_the_caption_model_and_the_answerer(vqa_run, caption_model, shapes):
    captioner, answerer = Captioner.load(caption_model), VQAAnswerer.load(vqa_run.model_path)
    answerer.encoder.load_state_dict(captioner.encoder.state_dict())  # as if both were trained on one frozen encoder
    images = sorted((shapes / "images").iterdir())[:3]
    questions = ["what color is the circle?", "how many shapes are there?"]
    encoded = []
    captioner.encoder.register_forward_hook(lambda module, inputs, output: encoded.append(len(output)))
    described = describe(captioner, answerer, images, questions, beam_size=2, top_k=3)
    assert encoded == [3]  # three images, one pass, although two models read them
    for result, path in zip(described, images):
        assert result.caption.text == captioner.caption([path], beam_size=2)[0].text
        for shared, question in zip(result.answers, questions):
            alone = answerer.ask(path, question, top_k=3)
            assert [a for a, _ in shared.answers] == [a for a, _ in alone.answers]
            assert [p for _, p in shared.answers] == pytest.approx([p for _, p in alone.answers], abs=1e-5)  # batch of 6 vs 1
    assert share_encoder(captioner, answerer).encoder is captioner.encoder


def test_models_on_different_encoders_are_refused_a_shared_pass(vqa_run, caption_model):
    captioner, answerer = Captioner.load(caption_model), VQAAnswerer.load(vqa_run.model_path)
    answerer.encoder.load_state_dict(captioner.encoder.state_dict())
    with torch.no_grad():
        next(answerer.encoder.parameters()).add_(1.0)  # the same architecture, other weights
    with pytest.raises(CaptionerError, match="need different encoder passes .*encoder weights differ"):
        check_same_encoder(captioner, answerer)
    answerer.encoder.image_size = 96
    with pytest.raises(CaptionerError, match="need different encoder passes \\(.*image_size 64 vs 96"):
        describe(captioner, answerer, [], ["how many shapes are there?"])


def test_ask_with_caption_uses_two_passes_when_the_models_read_different_grids(vqa_run, image, capsys):
    # the tiny VQA model's encoder is not the shipped caption model's: each model encodes the image its own way
    assert main(["ask", str(image), "what color is the circle?", "--checkpoint", str(vqa_run.model_path), "--top-k", "2",
                 "--caption"]) == 0
    caption, *answers = capsys.readouterr().out.splitlines()
    assert caption.startswith("caption: ") and len(caption.split()) > 2 and len(answers) == 2


def test_save_then_load_gives_identical_answers(vqa_run, shapes, tmp_path):
    first = VQAAnswerer.load(vqa_run.model_path)
    first.save(tmp_path / "copy.pt")
    second = VQAAnswerer.load(tmp_path / "copy.pt")
    images = sorted((shapes / "images").iterdir())[:3]
    for path, question in zip(images, ["what color is the circle?", "how many shapes are there?", "is there a red square?"]):
        a, b = first.ask(path, question, top_k=5), second.ask(path, question, top_k=5)
        assert a.answers == b.answers
        torch.testing.assert_close(a.alphas, b.alphas)
        assert a.alphas.shape == (first.model.config.glimpses, first.encoder.num_locations)


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("vqa_*.yaml")), ids=lambda p: p.name)
def test_every_vqa_config_loads(config):
    loaded = load_config(config)
    assert loaded.task == "vqa" and loaded.model.reasoning in REASONERS.names()


def test_mac_reasoning_trains_on_tiny_data_and_answers_after_reloading(shapes, image, tmp_path):
    run = train(tiny_vqa_config(shapes, tmp_path / "mac", "model.reasoning=mac", "model.coord_features=true", "trainer.max_epochs=2"))
    answerer = VQAAnswerer.load(run.model_path)
    assert answerer.model.config.reasoning == "mac" and run.global_step > 0
    answer = answerer.ask(image, "what color is the shape to the left of the circle?", top_k=3)
    assert len(answer.answers) == 3 and answer.alphas.shape == (2, answerer.encoder.num_locations)  # one map per hop
    copy = VQAAnswerer.load(answerer.save(tmp_path / "copy.pt"))
    assert copy.ask(image, "is there a red square?", top_k=3).answers == answerer.ask(image, "is there a red square?", top_k=3).answers
