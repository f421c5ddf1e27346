"""VQA v2-format data: questions paired with their annotations by question_id, answer vocabulary, soft targets.

No Lightning here. Images come from an image folder (with a transform) or from a feature cache built for
captioning: the cache is keyed by image id, so one cache serves both tasks.
"""

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from captioner.data.coco import read_json
from captioner.data.images import input_size, load_image
from captioner.errors import CaptionerError
from captioner.evaluation.vqa_accuracy import normalize_answer, soft_score
from captioner.text import Vocabulary

QUESTION_FIELDS = ("question_id", "image_id", "question")
ANNOTATION_FIELDS = ("question_id", "image_id", "answers")


@dataclass(frozen=True)
class VQAItem:
    question_id: int
    image_id: int
    question: str
    annotation: dict  # the VQA v2 annotation as read (answers, answer_type, question_type, ...)

    @property
    def answers(self) -> list[str]:
        return [str(a["answer"]) for a in self.annotation["answers"]]


def _records(path: Path, key: str, fields: Sequence[str]) -> list[dict]:
    data = read_json(path)
    records = data.get(key) if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise CaptionerError(f"{path}: not a VQA {key} file (needs a list of {key})")
    for i, record in enumerate(records):
        if not isinstance(record, dict) or any(f not in record for f in fields):
            raise CaptionerError(f"{path}: {key}[{i}] lacks {' or '.join(fields)}")
    return records


def _check_answers(path: Path, annotations: list[dict]) -> None:
    for a in annotations:
        answers = a["answers"]
        if not isinstance(answers, list) or not answers or not all(isinstance(x, dict) and "answer" in x for x in answers):
            raise CaptionerError(f"{path}: annotation of question {a['question_id']} has no valid 'answers' list")


def read_vqa(questions: str | Path, annotations: str | Path) -> list[VQAItem]:
    """Pair a VQA v2 questions file with its annotations file by question_id (never by order)."""
    questions, annotations = Path(questions), Path(annotations)
    by_id = {a["question_id"]: a for a in _records(annotations, "annotations", ANNOTATION_FIELDS)}
    _check_answers(annotations, list(by_id.values()))
    items, orphans = [], []
    for q in _records(questions, "questions", QUESTION_FIELDS):
        annotation = by_id.get(q["question_id"])
        if annotation is None:
            orphans.append(q["question_id"])
        elif annotation["image_id"] != q["image_id"]:
            raise CaptionerError(f"{annotations}: question {q['question_id']} is about image {q['image_id']} in {questions.name} "
                                 f"but image {annotation['image_id']} here")
        else:
            items.append(VQAItem(int(q["question_id"]), int(q["image_id"]), str(q["question"]), annotation))
    if orphans:
        raise CaptionerError(f"{questions}: {len(orphans)} questions have no annotation in {annotations} (e.g. {orphans[0]})")
    return items


class AnswerVocabulary:
    """The K answers the classifier chooses from, most frequent first (normalised with the official rules)."""

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.index = {a: i for i, a in enumerate(self.answers)}
        if len(self.index) != len(self.answers):
            raise ValueError("answers must be unique")

    @classmethod
    def build(cls, items: Iterable[VQAItem], top_k: int) -> "AnswerVocabulary":
        """Top-K `multiple_choice_answer`s of `items` (pass the training split only), ties alphabetical."""
        counts = Counter(normalize_answer(_chosen_answer(item)) for item in items)
        ranked = sorted(counts, key=lambda a: (-counts[a], a))
        return cls([a for a in ranked if a][:top_k])

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, index: int) -> str:
        return self.answers[index]

    def soft_targets(self, answers: Sequence[str]) -> torch.Tensor:
        """The annotators' answers → (K,) soft scores min(#annotators who gave it / 3, 1); 0 outside the vocabulary."""
        target = torch.zeros(len(self.answers))
        for answer, count in Counter(normalize_answer(a) for a in answers).items():
            if answer in self.index:
                target[self.index[answer]] = soft_score(count)
        return target


def _chosen_answer(item: VQAItem) -> str:
    """The annotation's `multiple_choice_answer`, or the most common answer when a hand-made file lacks it."""
    chosen = item.annotation.get("multiple_choice_answer")
    return str(chosen) if chosen is not None else Counter(item.answers).most_common(1)[0][0]


def build_question_vocab(items: Iterable[VQAItem], min_count: int = 1) -> Vocabulary:
    return Vocabulary.build((item.question for item in items), min_count)


def encode_question(vocab: Vocabulary, question: str, max_len: int) -> list[int]:
    """Question → word ids (no <start>/<end>: the encoder reads to the true last word), at most max_len, never empty."""
    ids = vocab.encode(question, add_special=False)[:max_len]
    return ids or [vocab.unk_id]


def image_files(index_json: str | Path | None, pattern: str, image_ids: Iterable[int]) -> dict[int, str]:
    """image_id → file name: from a COCO-format JSON's `images` list when given, else from `pattern`."""
    if index_json is None:
        return {i: pattern.format(image_id=i) for i in image_ids}
    data = read_json(index_json)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CaptionerError(f"{index_json}: needs an 'images' list of {{id, file_name}} to name the image files")
    try:
        return {int(img["id"]): str(img["file_name"]) for img in data["images"]}
    except (KeyError, TypeError, ValueError):
        raise CaptionerError(f"{index_json}: every entry of 'images' needs an id and a file_name") from None


class VQADataset(Dataset):
    """One sample per question: `{"image" | "features", "question", "target", "question_id", "image_id"}`.

    mode="eval" samples also carry `"annotation"` (the raw VQA annotation, for the official metric).
    Give either `transform` (images are read from `images_dir`, named by `files`) or `features` (a FeatureCache).
    """

    def __init__(
        self,
        items: Sequence[VQAItem],
        question_vocab: Vocabulary,
        answer_vocab: AnswerVocabulary,
        *,
        images_dir: str | Path | None = None,
        files: dict[int, str] | None = None,
        transform: Callable | None = None,
        features: Any = None,
        max_question_len: int = 20,
        mode: str = "train",
        fail_fast: bool = True,
        source: str = "VQA data",
    ) -> None:
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be train or eval, got {mode!r}")
        if (transform is None) == (features is None):
            raise ValueError("give exactly one of transform (read images) or features (a feature cache)")
        self.items, self.question_vocab, self.answer_vocab = list(items), question_vocab, answer_vocab
        self.images_dir, self.files = Path(images_dir or "."), files or {}
        self.transform, self.features, self.max_question_len = transform, features, max_question_len
        self.mode, self.fail_fast = mode, fail_fast
        self._last: tuple[int, torch.Tensor] | None = None  # the last grid read from the cache
        self._check_images(source)

    def _check_images(self, source: str) -> None:
        image_ids = sorted({item.image_id for item in self.items})
        if self.features is not None:
            missing = [i for i in image_ids if i not in self.features]
            where = f"the feature cache {getattr(self.features, 'path', '')}"
        else:
            missing = [i for i in image_ids if i not in self.files or not (self.images_dir / self.files[i]).is_file()]
            where = f"the image folder {self.images_dir}"
        if missing:
            example = self.files.get(missing[0], f"image id {missing[0]}")
            raise CaptionerError(f"{source}: {len(missing)} of {len(image_ids)} images are not in {where} (e.g. {example})")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        visual = self._visual(item.image_id)
        if "skipped" in visual:
            return visual
        sample = {
            **visual,
            "question": torch.tensor(encode_question(self.question_vocab, item.question, self.max_question_len)),
            "target": self.answer_vocab.soft_targets(item.answers),
            "question_id": item.question_id,
            "image_id": item.image_id,
        }
        return {**sample, "annotation": item.annotation} if self.mode == "eval" else sample

    def _visual(self, image_id: int) -> dict:
        """The image (or its cached grid); with fail_fast=False an unreadable image yields {"skipped": reason}."""
        if self.features is not None:
            if self._last is None or self._last[0] != image_id:  # an image's questions come together: read it once
                self._last = (image_id, torch.from_numpy(self.features[image_id]))  # (L, C) float16
            return {"features": self._last[1]}
        try:
            return {"image": self.transform(load_image(self.images_dir / self.files[image_id], input_size(self.transform)))}
        except CaptionerError as e:
            if self.fail_fast:
                raise
            return {"skipped": str(e)}

    def annotations(self) -> list[dict]:
        return [item.annotation for item in self.items]


class ImageGroupedBatches(Sampler[list[int]]):
    """Batches of whole images: all the questions of an image in the same batch, images in a new random order each
    epoch (torch's global generator, so seeded runs repeat). A batch holds `images_per_batch` images, about
    `batch_size` questions, so that the model projects each image's grid once for all its questions."""

    def __init__(self, image_ids: Sequence[int], batch_size: int) -> None:
        groups: dict[int, list[int]] = {}
        for position, image_id in enumerate(image_ids):
            groups.setdefault(image_id, []).append(position)
        self.groups = list(groups.values())
        self.images_per_batch = max(1, round(batch_size * len(self.groups) / max(len(image_ids), 1)))

    def __len__(self) -> int:
        return math.ceil(len(self.groups) / self.images_per_batch)

    def __iter__(self):
        order = torch.randperm(len(self.groups)).tolist()
        for start in range(0, len(order), self.images_per_batch):
            yield [position for g in order[start : start + self.images_per_batch] for position in self.groups[g]]
