import json
import random

import pytest
import torch

from captioner.data.collate import collate, collate_images_once
from captioner.data.features import extract_features
from captioner.data.vqa import AnswerVocabulary, ImageGroupedBatches, VQADataset, build_question_vocab, image_files, read_vqa
from captioner.encoders import build_encoder
from captioner.errors import CaptionerError


def vqa_files(shapes, split="train"):
    return shapes / f"vqa_{split}_questions.json", shapes / f"vqa_{split}_annotations.json"


def write_vqa(tmp_path, questions: list[dict], annotations: list[dict]):
    q, a = tmp_path / "q.json", tmp_path / "a.json"
    q.write_text(json.dumps({"questions": questions}))
    a.write_text(json.dumps({"annotations": annotations}))
    return q, a


def annotation(question_id: int, answers: list[str], image_id: int = 1, chosen: str | None = None) -> dict:
    return {"question_id": question_id, "image_id": image_id, "multiple_choice_answer": chosen or answers[0],
            "answers": [{"answer": a, "answer_id": n + 1} for n, a in enumerate(answers)]}


def test_questions_pair_with_annotations_by_id_not_by_order(shapes, tmp_path):
    questions, annotations = vqa_files(shapes)
    data = json.loads(annotations.read_text())
    random.Random(0).shuffle(data["annotations"])
    shuffled = tmp_path / "shuffled_annotations.json"
    shuffled.write_text(json.dumps(data))
    expected = {a["question_id"]: a for a in json.loads(annotations.read_text())["annotations"]}
    items = read_vqa(questions, shuffled)
    assert [i.question_id for i in items] == [q["question_id"] for q in json.loads(questions.read_text())["questions"]]
    for item in items:
        assert item.annotation == expected[item.question_id] and item.image_id == expected[item.question_id]["image_id"]


@pytest.mark.parametrize(
    "questions, annotations, message",
    [
        ("not json", '{"annotations": []}', "q.json: invalid JSON"),
        ('{"questions": 3}', '{"annotations": []}', "q.json: not a VQA questions file"),
        ('{"questions": [{"question_id": 1, "image_id": 1}]}', '{"annotations": []}', r"q.json: questions\[0\] lacks"),
        ('{"questions": [{"question_id": 1, "image_id": 1, "question": "why?"}]}', '{"annotations": []}',
         "q.json: 1 questions have no annotation in .*a.json"),
        ('{"questions": []}', '{"annotations": [{"question_id": 1, "image_id": 1, "answers": []}]}',
         "a.json: annotation of question 1 has no valid 'answers'"),
    ],
)
def test_bad_files_are_one_line_errors_naming_the_file(tmp_path, questions, annotations, message):
    (tmp_path / "q.json").write_text(questions)
    (tmp_path / "a.json").write_text(annotations)
    with pytest.raises(CaptionerError, match=message):
        read_vqa(tmp_path / "q.json", tmp_path / "a.json")
    with pytest.raises(CaptionerError, match="annotation file not found: .*missing.json"):
        read_vqa(tmp_path / "q.json", tmp_path / "missing.json")


def test_answer_vocabulary_comes_from_the_training_split_only(tmp_path):
    train = [annotation(1, ["red"] * 10), annotation(2, ["Two"] * 10), annotation(3, ["red"] * 10)]
    questions = [{"question_id": a["question_id"], "image_id": 1, "question": "what?"} for a in train]
    items = read_vqa(*write_vqa(tmp_path, questions, train))
    vocab = AnswerVocabulary.build(items, top_k=10)
    assert vocab.answers == ["red", "2"]  # most frequent first, normalised with the official rules ("Two" → "2")
    assert AnswerVocabulary.build(items, top_k=1).answers == ["red"]


def test_datamodule_vocabularies_ignore_the_val_split(shapes, tmp_path):
    from captioner.config import load_config
    from captioner.training.vqa_task import VQADataModule

    val_q, val_a = vqa_files(shapes, "val")
    data = json.loads(val_a.read_text())
    data["annotations"][0].update(multiple_choice_answer="zebra", answers=[{"answer": "zebra"}] * 10)
    (tmp_path / "val_a.json").write_text(json.dumps(data))
    questions = json.loads(val_q.read_text())
    questions["questions"][0]["question"] = "is the okapi striped?"
    (tmp_path / "val_q.json").write_text(json.dumps(questions))
    config = load_config("configs/vqa_tiny.yaml", [f"data.train_questions={vqa_files(shapes)[0]}", f"data.train_annotations={vqa_files(shapes)[1]}",
                                                   f"data.val_questions={tmp_path / 'val_q.json'}", f"data.val_annotations={tmp_path / 'val_a.json'}",
                                                   f"data.images_dir={shapes / 'images'}", f"data.train_images_index={shapes / 'captions_train.json'}",
                                                   f"data.val_images_index={shapes / 'captions_val.json'}"])
    module = VQADataModule(config.data, build_encoder("tiny_cnn", image_size=64))
    assert "zebra" not in module.answer_vocab.answers and "okapi" not in module.question_vocab
    assert module.val_set[0]["target"].sum() == 0  # its answer is outside the vocabulary: no target at all


def test_soft_scores_count_annotators_up_to_three():
    vocab = AnswerVocabulary(["yes", "no", "2"])
    target = vocab.soft_targets(["yes"] * 7 + ["no"] * 2 + ["two"])
    torch.testing.assert_close(target, torch.tensor([1.0, 2 / 3, 1 / 3]))
    assert vocab.soft_targets(["maybe"] * 10).sum() == 0


def test_dataset_reads_images_and_collates_into_padded_questions(shapes):
    items = read_vqa(*vqa_files(shapes, "val"))
    encoder = build_encoder("tiny_cnn", image_size=64)
    qvocab, avocab = build_question_vocab(items), AnswerVocabulary.build(items, 20)
    dataset = VQADataset(items, qvocab, avocab, images_dir=shapes / "images", transform=encoder.transform,
                         files=image_files(shapes / "captions_val.json", "", []), mode="eval")
    batch = collate([dataset[i] for i in range(5)])
    assert batch["images"].shape == (5, 3, 64, 64) and batch["targets"].shape == (5, len(avocab))
    assert batch["questions"].shape == (5, int(batch["question_lengths"].max()))
    assert len(batch["annotation"]) == 5 and batch["question_ids"].tolist() == [i.question_id for i in items[:5]]
    assert qvocab.decode(batch["questions"][0]) == " ".join(items[0].question.rstrip("?").split())


def test_a_feature_cache_built_for_captioning_serves_vqa(shapes, tmp_path):
    encoder = build_encoder("tiny_cnn", image_size=64)
    captions = json.loads((shapes / "captions_val.json").read_text())
    cache, _ = extract_features(encoder, {img["id"]: shapes / "images" / img["file_name"] for img in captions["images"]}, tmp_path / "cache")
    items = read_vqa(*vqa_files(shapes, "val"))
    dataset = VQADataset(items, build_question_vocab(items), AnswerVocabulary.build(items, 20), features=cache)
    sample = dataset[0]
    assert sample["features"].shape == (encoder.num_locations, encoder.channels) and "annotation" not in sample
    with pytest.raises(CaptionerError, match="images are not in the feature cache"):
        VQADataset(read_vqa(*vqa_files(shapes, "train")), build_question_vocab(items), AnswerVocabulary.build(items, 20), features=cache)


def test_grouped_batches_keep_each_images_questions_together_and_cover_every_question_once():
    image_ids = [7, 7, 7, 3, 3, 9, 9, 9, 9, 4, 5, 5]  # five images, 12 questions
    torch.manual_seed(0)
    sampler = ImageGroupedBatches(image_ids, batch_size=5)
    assert sampler.images_per_batch == 2  # about 5 questions at 2.4 questions per image
    epochs = [list(sampler) for _ in range(2)]
    for batches in epochs:
        assert len(batches) == len(sampler) == 3
        assert sorted(p for batch in batches for p in batch) == list(range(12))
        images_in = [{image_ids[p] for p in batch} for batch in batches]
        assert all(len(a & b) == 0 for i, a in enumerate(images_in) for b in images_in[i + 1 :])  # no image split
    assert epochs[0] != epochs[1]  # a new order each epoch


def test_collating_stacks_each_image_once_and_indexes_it_per_question():
    grid = {7: torch.full((4, 3), 7.0, dtype=torch.float16), 3: torch.full((4, 3), 3.0, dtype=torch.float16)}
    samples = [{"features": grid[i], "question": torch.tensor([5, 6]), "image_id": i, "question_id": n}
               for n, i in enumerate([7, 3, 7, 7])]
    batch = collate_images_once([*samples[:2], {"skipped": "x.jpg: not an image file"}, *samples[2:]])
    assert batch["features"].shape == (2, 4, 3) and batch["features"].dtype == torch.float32  # (N, L, C)
    assert batch["image_index"].tolist() == [0, 1, 0, 0] and batch["skipped"] == ["x.jpg: not an image file"]
    torch.testing.assert_close(batch["features"][batch["image_index"]], collate(samples)["features"])
