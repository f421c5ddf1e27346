"""The `vqa` task: VQA v2-format data config and DataModule, and the builder of encoder, vocabularies, VQAModel
and VQAModule from a RunConfig."""

import dataclasses
from dataclasses import dataclass

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from captioner.config import TASKS, RunConfig, TaskSpec
from captioner.data.collate import collate_images_once
from captioner.data.features import FeatureCache
from captioner.data.vqa import AnswerVocabulary, ImageGroupedBatches, VQADataset, VQAItem, build_question_vocab, image_files, read_vqa
from captioner.encoders import ImageEncoder, encoder_from_config
from captioner.models.vqa import VQAConfig, VQAModel
from captioner.training.datamodules import loader_options
from captioner.training.vqa_module import VQAModule


@dataclass
class VQADataConfig:
    train_questions: str = "data/vqa/v2_OpenEnded_mscoco_train2014_questions.json"
    train_annotations: str = "data/vqa/v2_mscoco_train2014_annotations.json"
    val_questions: str = "data/vqa/v2_OpenEnded_mscoco_val2014_questions.json"
    val_annotations: str = "data/vqa/v2_mscoco_val2014_annotations.json"
    images_dir: str = "data/coco/train2014"
    val_images_dir: str | None = None  # defaults to images_dir
    # image file names: from a COCO-format JSON's "images" list (e.g. captions_train.json) when given, else a pattern
    train_images_index: str | None = None
    val_images_index: str | None = None
    train_file_pattern: str = "COCO_train2014_{image_id:012d}.jpg"
    val_file_pattern: str = "COCO_val2014_{image_id:012d}.jpg"
    features_dir: str | None = None  # a cache from `captioner extract-features` (a captioning cache serves too)
    num_answers: int = 1000  # K: the most frequent answers of the training split
    question_min_count: int = 1
    max_question_len: int = 20
    batch_size: int = 128
    group_by_image: bool = True  # training batches of whole images (each grid projected once for all its questions)
    num_workers: int = 2
    fail_fast: bool = False  # stop at the first unreadable image instead of skipping and reporting it

    def __post_init__(self) -> None:
        if min(self.num_answers, self.question_min_count, self.max_question_len, self.batch_size) < 1 or self.num_workers < 0:
            raise ValueError("num_answers, question_min_count, max_question_len and batch_size must be positive, num_workers ≥ 0")


class VQADataModule(pl.LightningDataModule):
    """Train/val VQA datasets; the question and answer vocabularies come from the training split only."""

    def __init__(self, config: VQADataConfig, encoder: ImageEncoder) -> None:
        super().__init__()
        self.config = c = config
        train_items = read_vqa(c.train_questions, c.train_annotations)
        val_items = read_vqa(c.val_questions, c.val_annotations)
        self.question_vocab = build_question_vocab(train_items, c.question_min_count)
        self.answer_vocab = AnswerVocabulary.build(train_items, c.num_answers)
        common = {"max_question_len": c.max_question_len, "fail_fast": c.fail_fast}
        self.train_set = VQADataset(train_items, self.question_vocab, self.answer_vocab, mode="train",
                                    source=c.train_questions, **common, **self._source(encoder, "train", train_items))
        self.val_set = VQADataset(val_items, self.question_vocab, self.answer_vocab, mode="eval",
                                  source=c.val_questions, **common, **self._source(encoder, "val", val_items))

    def _source(self, encoder: ImageEncoder, split: str, items: list[VQAItem]) -> dict:
        c = self.config
        if c.features_dir is not None:
            cache = FeatureCache(c.features_dir)
            cache.check_compatible(encoder.describe())
            return {"features": cache}
        if split == "train":
            index, pattern, folder = c.train_images_index, c.train_file_pattern, c.images_dir
        else:
            index, pattern, folder = c.val_images_index, c.val_file_pattern, c.val_images_dir or c.images_dir
        files = image_files(index, pattern, {item.image_id for item in items})
        return {"transform": encoder.transform, "images_dir": folder, "files": files}

    def train_dataloader(self) -> DataLoader:
        options = {**loader_options(self.config.num_workers), "collate_fn": collate_images_once}
        distributed = self.trainer is not None and self.trainer.world_size > 1  # Lightning shards plain samplers only
        if self.config.group_by_image and not distributed:
            batches = ImageGroupedBatches([item.image_id for item in self.train_set.items], self.config.batch_size)
            return DataLoader(self.train_set, batch_sampler=batches, **options)
        return DataLoader(self.train_set, batch_size=self.config.batch_size, shuffle=True, **options)

    def val_dataloader(self) -> DataLoader:
        options = {**loader_options(self.config.num_workers), "collate_fn": collate_images_once}
        return DataLoader(self.val_set, batch_size=self.config.batch_size, **options)


def build_vqa_task(config: RunConfig) -> tuple[VQAModule, VQADataModule]:
    encoder = encoder_from_config(config.encoder)
    datamodule = VQADataModule(config.data, encoder)
    model_config = dataclasses.replace(
        config.model, vocab_size=len(datamodule.question_vocab), num_answers=len(datamodule.answer_vocab),
        feature_dim=encoder.channels,
    )
    module = VQAModule(encoder, VQAModel(model_config), datamodule.question_vocab, datamodule.answer_vocab,
                       config.encoder, config.optim, max_question_len=config.data.max_question_len)
    return module, datamodule


TASKS.register("vqa")(TaskSpec(VQADataConfig, VQAConfig, build_vqa_task, monitor="val/accuracy"))
