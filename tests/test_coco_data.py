import json

import pytest
from PIL import Image

from captioner.data.coco import CocoCaptions, SubsetSpec
from captioner.data.collate import collate
from captioner.encoders import build_encoder
from captioner.errors import CaptionerError
from captioner.text import Vocabulary
from captioner.training.datamodules import CaptionDataConfig, CaptionDataModule

TRANSFORM = build_encoder("tiny_cnn", image_size=32).transform


def write_coco(root, n_images=6, captions_per_image=2):
    """A tiny COCO-format captions file with real PNGs; returns (annotations path, images dir)."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    images, annotations = [], []
    for i in range(1, n_images + 1):
        Image.new("RGB", (40, 30), (20 * i, 100, 50)).save(images_dir / f"img{i}.png")
        images.append({"id": i, "file_name": f"img{i}.png"})
        annotations += [{"id": 10 * i + k, "image_id": i, "caption": f"Picture {i}, caption {k}."} for k in range(captions_per_image)]
    path = root / "captions.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path, images_dir


@pytest.fixture
def coco(tmp_path):
    return write_coco(tmp_path)


def vocab_for(path):
    return Vocabulary.build(a["caption"] for a in json.loads(path.read_text())["annotations"])


def test_training_gives_one_sample_per_caption_and_eval_one_per_image(coco):
    annotations, images = coco
    train = CocoCaptions(annotations, images, TRANSFORM, vocab_for(annotations), mode="train")
    evaluation = CocoCaptions(annotations, images, TRANSFORM, mode="eval")
    assert len(train) == 12 and len(evaluation) == 6
    sample = train[0]
    assert sample["image"].shape == (3, 32, 32)
    assert sample["caption"][0] == Vocabulary.start_id and sample["caption"][-1] == Vocabulary.end_id
    assert evaluation[0]["references"] == ["Picture 1, caption 0.", "Picture 1, caption 1."]


def test_subsets_by_count_fraction_and_karpathy_split(coco, tmp_path):
    annotations, images = coco
    by_count = CocoCaptions(annotations, images, TRANSFORM, mode="eval", subset=SubsetSpec(max_images=3, seed=1))
    again = CocoCaptions(annotations, images, TRANSFORM, mode="eval", subset=SubsetSpec(max_images=3, seed=1))
    assert len(by_count) == 3 and by_count.image_ids == again.image_ids
    assert len(CocoCaptions(annotations, images, TRANSFORM, mode="eval", subset=SubsetSpec(fraction=0.5))) == 3
    split = tmp_path / "dataset_coco.json"
    split.write_text(json.dumps({"images": [{"cocoid": 1, "split": "train"}, {"cocoid": 2, "split": "restval"}, {"cocoid": 3, "split": "test"}]}))
    karpathy = CocoCaptions(annotations, images, TRANSFORM, mode="eval", subset=SubsetSpec(karpathy_file=str(split), karpathy_split="train"))
    assert karpathy.image_ids == [1, 2]


def test_collate_pads_captions_and_reports_lengths(coco):
    annotations, images = coco
    vocab = vocab_for(annotations)
    train = CocoCaptions(annotations, images, TRANSFORM, vocab, mode="train", max_caption_len=2)
    batch = collate([train[0], train[1]])
    assert batch["images"].shape == (2, 3, 32, 32)
    assert batch["captions"].shape == (2, 4) and batch["lengths"].tolist() == [4, 4]  # truncated, <end> kept
    assert batch["captions"][0, -1] == vocab.end_id and batch["mask"].all()


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "invalid JSON"),
        ('{"images": []}', "not a COCO captions file"),
        ('{"images": [{"id": 1}], "annotations": []}', r"images\[0\] lacks id or file_name"),
        ('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 2, "caption": "x"}]}', "refer to image ids not in"),
    ],
)
def test_bad_annotation_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CaptionerError, match=f"bad.json.*{message}|{message}"):
        CocoCaptions(path, tmp_path, TRANSFORM, mode="eval")


def test_missing_files_and_images(coco, tmp_path):
    annotations, images = coco
    with pytest.raises(CaptionerError, match="annotation file not found"):
        CocoCaptions(tmp_path / "nope.json", images, TRANSFORM, mode="eval")
    (images / "img2.png").unlink()
    with pytest.raises(CaptionerError, match=r"1 of 6 images are not in the image folder .* \(e.g. img2.png\)"):
        CocoCaptions(annotations, images, TRANSFORM, mode="eval")
    assert len(CocoCaptions(annotations, images, TRANSFORM, mode="eval", skip_missing=True)) == 5


def test_unreadable_image_is_reported_by_name(coco):
    annotations, images = coco
    (images / "img1.png").write_bytes(b"\x89PNG broken")
    dataset = CocoCaptions(annotations, images, TRANSFORM, mode="eval")
    with pytest.raises(CaptionerError, match="img1.png"):
        dataset[0]


def test_datamodule_batches_images_with_all_their_captions(coco):
    annotations, images = coco
    config = CaptionDataConfig(str(annotations), str(annotations), str(images), vocab_min_count=1, batch_size=4, num_workers=0)
    datamodule = CaptionDataModule(config, build_encoder("tiny_cnn", image_size=32))
    for batch in (next(iter(datamodule.train_dataloader())), next(iter(datamodule.val_dataloader()))):
        assert batch["images"].shape == (4, 3, 32, 32) and len(batch["references"]) == 4
        for image_id, references in zip(batch["image_ids"].tolist(), batch["references"]):
            assert references == datamodule.train_set.captions_for(image_id)  # every caption of the image
    assert len(datamodule.vocab) > 4


def test_reads_real_coco_mini(coco_mini):
    dataset = CocoCaptions(coco_mini / "captions_val.json", coco_mini / "images", TRANSFORM, mode="eval")
    assert len(dataset) == 317
    sample = dataset[0]
    assert sample["image"].shape == (3, 32, 32) and len(sample["references"]) >= 5
