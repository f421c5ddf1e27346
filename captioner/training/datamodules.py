"""LightningDataModules: thin wrappers that pick datasets and loaders; the data code itself knows no Lightning."""

from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from captioner.data.boxes import WordRegions, read_instances
from captioner.data.coco import CAPTION_FORMATS, CocoCaptions, SubsetSpec
from captioner.data.collate import collate
from captioner.data.features import FeatureCache
from captioner.data.mirror import Mirror
from captioner.encoders import ImageEncoder
from captioner.text import Vocabulary


@dataclass
class CaptionDataConfig:
    train_annotations: str = "data/coco/annotations/captions_train2014.json"
    val_annotations: str = "data/coco/annotations/captions_val2014.json"
    images_dir: str = "data/coco/train2014"
    val_images_dir: str | None = None  # defaults to images_dir
    features_dir: str | None = None  # a cache from `captioner extract-features`: no image decoding
    train_boxes: str | None = None  # COCO instances file of the training images: per-word attention targets
    mirror: float = 0.0  # probability of training on the photo mirrored left ↔ right ("left"/"right" swapped)
    mirror_features_dir: str | None = None  # with features_dir: the mirrored grids (`extract-features --mirror`)
    vocab_min_count: int = 5
    vocab_max_size: int | None = None
    max_caption_len: int = 20
    max_images: int | None = None  # training subset: a count ...
    fraction: float | None = None  # ... or a fraction (seeded) ...
    subset_seed: int = 0
    karpathy_file: str | None = None  # ... or a Karpathy dataset_coco.json split
    val_max_images: int | None = None
    batch_size: int = 16  # images per batch; each brings all its reference captions (about 5 on COCO)
    num_workers: int = 2
    fail_fast: bool = False  # stop at the first unreadable image instead of skipping and reporting it
    format: str = "auto"  # caption files: coco | karpathy (dataset_flickr8k.json …) | auto (tell by content)
    train_split: str = "train"  # Karpathy files hold every split: train (with restval) for training ...
    val_split: str = "val"  # ... and val for validation; COCO-format files are a split each and ignore these

    def __post_init__(self) -> None:
        if self.format not in ("auto", *CAPTION_FORMATS.names()):
            raise ValueError(f"data.format must be auto, {' or '.join(CAPTION_FORMATS.names())}, got {self.format!r}")
        if not 0 <= self.mirror <= 1:
            raise ValueError(f"data.mirror is a probability in [0, 1], got {self.mirror}")
        if self.mirror > 0 and self.features_dir is not None and self.mirror_features_dir is None:
            raise ValueError("data.mirror with a feature cache needs data.mirror_features_dir "
                             "(captioner extract-features --mirror)")
        if self.batch_size < 1 or self.num_workers < 0 or self.max_caption_len < 1 or self.vocab_min_count < 1:
            raise ValueError("batch_size, max_caption_len and vocab_min_count must be positive and num_workers ≥ 0")


def loader_options(num_workers: int) -> dict:
    """Decoding in worker processes; pinned memory only when a GPU will receive the batches."""
    return {
        "num_workers": num_workers,
        "persistent_workers": num_workers > 0,
        "pin_memory": torch.cuda.is_available(),
        "collate_fn": collate,
    }


class CaptionDataModule(pl.LightningDataModule):
    def __init__(self, config: CaptionDataConfig, encoder: ImageEncoder, vocab: Vocabulary | None = None) -> None:
        super().__init__()
        self.config = c = config
        source = self._source(encoder)
        train_subset = SubsetSpec(c.max_images, c.fraction, c.subset_seed, c.karpathy_file, "train" if c.karpathy_file else None)
        train_files = {"format": c.format, "split": c.train_split, **source}
        # Training batches are images with all their captions, as validation's: each grid is read once per batch.
        self.train_set = CocoCaptions(c.train_annotations, c.images_dir, mode="eval", subset=train_subset, fail_fast=c.fail_fast, **train_files)
        self.vocab = vocab or Vocabulary.build(self.train_set.all_captions(), c.vocab_min_count, c.vocab_max_size)
        if c.train_boxes:  # per-word attention targets travel with each image's references
            self.train_set.regions = WordRegions(read_instances(c.train_boxes, self.train_set.image_sizes()), encoder.geometry)
        if c.mirror > 0:
            self.train_set.mirror = self._mirror(encoder)
        self.val_set = CocoCaptions(
            c.val_annotations, c.val_images_dir or c.images_dir, vocab=self.vocab, mode="eval",
            subset=SubsetSpec(max_images=c.val_max_images) if c.val_max_images else None, fail_fast=c.fail_fast,
            format=c.format, split=c.val_split, **source,
        )

    def _source(self, encoder: ImageEncoder) -> dict:
        if self.config.features_dir is None:
            return {"transform": encoder.transform}
        cache = FeatureCache(self.config.features_dir)
        cache.check_compatible(encoder.describe())
        return {"features": cache}

    def _mirror(self, encoder: ImageEncoder) -> Mirror:
        if self.config.features_dir is None:
            return Mirror(self.config.mirror)
        cache = FeatureCache(self.config.mirror_features_dir)
        cache.check_compatible(encoder.describe(), mirrored=True)
        mirror = Mirror(self.config.mirror, cache)
        mirror.check_covers(self.train_set.image_ids)
        return mirror

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.config.batch_size, shuffle=True, drop_last=False, **loader_options(self.config.num_workers))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.config.batch_size, **loader_options(self.config.num_workers))
