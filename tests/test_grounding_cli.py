"""`captioner evaluate --boxes` and `captioner caption --attention DIR --boxes FILE` on the shapes set's boxes."""

import json

import pytest

from captioner.cli import main
from captioner.data.shapes import SHAPES
from captioner.text.categories import word_categories
from captioner.training.runner import train
from helpers import tiny_caption_config


@pytest.fixture(scope="module")
def tiny_model(shapes, tmp_path_factory):
    return train(tiny_caption_config(shapes, tmp_path_factory.mktemp("run"), "trainer.max_epochs=3")).model_path


@pytest.mark.parametrize("beam", [1, 2])
def test_evaluate_reports_grounding_beside_the_caption_scores(shapes, tiny_model, tmp_path, capsys, beam):
    out = tmp_path / "eval"
    args = ["evaluate", "--checkpoint", str(tiny_model), "--annotations", str(shapes / "captions_val.json"),
            "--images", str(shapes / "images"), "--beam", str(beam), "--workers", "0",
            "--boxes", str(shapes / "instances_val.json"), "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "CIDEr-D" in printed and "grounding (8 labelled images" in printed
    grounding = json.loads((out / "scores.json").read_text())["grounding"]
    assert grounding["labelled_images"] == 8
    assert grounding["n"] + grounding["skipped_whole_image"] == named_shapes(shapes, out / "results.json")
    if grounding["n"]:
        assert 0 <= grounding["mean_mass"] <= 1 and 0 < grounding["mean_uniform"] < 1 and 0 <= grounding["beat_uniform"] <= 1
    else:
        assert grounding["mean_mass"] is None


def named_shapes(shapes, results_file) -> int:
    """How many generated words name a shape that the image holds."""
    instances = json.loads((shapes / "instances_val.json").read_text())
    names = {c["id"]: c["name"] for c in instances["categories"]}
    held = {(a["image_id"], names[a["category_id"]]) for a in instances["annotations"]}
    results = json.loads(results_file.read_text())
    return sum((r["image_id"], c) in held for r in results for c in word_categories(r["caption"].split(), SHAPES))


def test_evaluate_refuses_boxes_of_other_images_before_captioning(shapes, tiny_model, tmp_path, capsys):
    args = ["evaluate", "--checkpoint", str(tiny_model), "--annotations", str(shapes / "captions_val.json"),
            "--images", str(shapes / "images"), "--workers", "0", "--boxes", str(shapes / "instances_train.json")]
    assert main(args) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"captioner evaluate: error: {shapes / 'instances_train.json'}: image 1 (shapes_000000.png)")
    assert error.endswith("is not in the captions file") and "\n" not in error


def test_caption_outlines_boxes_and_writes_the_raw_maps(shapes, tiny_model, tmp_path, capsys):
    image = shapes / "images" / "shapes_000039.png"  # a validation image
    out = tmp_path / "figures"
    args = ["caption", str(image), "--checkpoint", str(tiny_model), "--attention", str(out), "--boxes", str(shapes / "instances_val.json")]
    assert main(args) == 0
    words = capsys.readouterr().out.split()
    maps = json.loads((out / "shapes_000039_attention.json").read_text())
    assert maps["words"][: len(words)] == words and maps["grid"] == [4, 4]
    assert len(maps["attention"]) == len(maps["words"]) and all(len(row) == 16 for row in maps["attention"])
    assert (out / "shapes_000039_attention.png").stat().st_size > 1000
    assert main(["caption", str(image), "--checkpoint", str(tiny_model), "--boxes", str(shapes / "instances_val.json")]) == 1
    assert "give --attention DIR too" in capsys.readouterr().err
