"""`VQAAnswerer`: load a VQA model file (the shipped real-photo answerer by default) and answer questions about
images, with the attention of each glimpse."""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from captioner.checkpoint import encoder_from_payload, encoder_payload, half_state, load_model_file, load_state_checked, save_model_file
from captioner.config import EncoderConfig, build_section
from captioner.data.images import input_size, load_image
from captioner.data.vqa import AnswerVocabulary, encode_question
from captioner.encoders import ImageEncoder
from captioner.errors import CaptionerError
from captioner.models.vqa import VQAConfig, VQAModel
from captioner.text import Vocabulary, tokenize

SHIPPED_ANSWERER = Path(__file__).parent / "assets" / "answerer-coco-mini.pt"


@dataclass
class Answer:
    answers: list[tuple[str, float]]  # the top answers with their probabilities, best first
    alphas: np.ndarray  # (G, L): one attention map per glimpse


class VQAAnswerer:
    """Encoder + VQA model + question and answer vocabularies, ready to answer questions about images."""

    def __init__(
        self,
        encoder: ImageEncoder,
        model: VQAModel,
        question_vocab: Vocabulary,
        answer_vocab: AnswerVocabulary,
        encoder_config: EncoderConfig,
        max_question_len: int = 20,
        meta: dict | None = None,
    ) -> None:
        self.encoder, self.model = encoder.eval(), model.eval()
        self.question_vocab, self.answer_vocab = question_vocab, answer_vocab
        self.encoder_config, self.max_question_len = encoder_config, max_question_len
        self.meta = meta or {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.encoder.grid_size

    def to(self, device: str | torch.device) -> "VQAAnswerer":
        self.encoder.to(device)
        self.model.to(device)
        return self

    # -- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path, force: bool = False) -> Path:
        payload = {
            **encoder_payload(self.encoder, self.encoder_config),
            "model_config": dataclasses.asdict(self.model.config),
            "model_state": half_state(self.model.state_dict()),
            "question_vocab": self.question_vocab.itos,
            "answers": self.answer_vocab.answers,
            "max_question_len": self.max_question_len,
            "meta": self.meta,
        }
        return save_model_file(path, "vqa", payload, force=force)

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device = "cpu") -> "VQAAnswerer":
        """A VQA model file; with no path, the shipped real-photo answerer (captioner/assets/answerer-coco-mini.pt)."""
        path = Path(path) if path is not None else SHIPPED_ANSWERER
        payload = load_model_file(path, "vqa")
        encoder, encoder_config = encoder_from_payload(payload, path)
        question_vocab = Vocabulary.from_dict({"itos": payload["question_vocab"]})
        answer_vocab = AnswerVocabulary(payload["answers"])
        config = build_section("checkpoint vqa model", VQAConfig, payload["model_config"])
        sizes = (len(question_vocab), len(answer_vocab), encoder.channels)
        if (config.vocab_size, config.num_answers, config.feature_dim) != sizes:
            raise CaptionerError(
                f"{path}: inconsistent checkpoint: the model expects {config.vocab_size} question words / {config.num_answers} "
                f"answers / {config.feature_dim} channels, the file has {sizes[0]} / {sizes[1]} and encoder {encoder.name} "
                f"gives {sizes[2]}"
            )
        model = VQAModel(config)
        load_state_checked(model, payload["model_state"], "vqa model", path)
        meta, max_len = payload.get("meta"), int(payload.get("max_question_len", 20))
        return cls(encoder, model, question_vocab, answer_vocab, encoder_config, max_len, meta).to(device)

    # -- answering -------------------------------------------------------------------------------------------
    def check_question(self, question: str) -> None:
        """A one-line CaptionerError for a question the model cannot read: empty, or not one word it knows."""
        words = tokenize(question)
        if not words:
            raise CaptionerError("the question is empty")
        if all(w not in self.question_vocab for w in words):
            raise CaptionerError(f"none of the words of {question!r} is known to this model (it knows {len(self.question_vocab) - 4} "
                                 f"question words, e.g. {', '.join(self.question_vocab.itos[4:9])})")

    def encode_questions(self, questions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Questions → padded ids (B, T) and lengths (B,), exactly as in training."""
        ids = [torch.tensor(encode_question(self.question_vocab, q, self.max_question_len)) for q in questions]
        padded = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=self.question_vocab.pad_id)  # (B, T)
        return padded.to(self.device), torch.tensor([len(i) for i in ids])

    @torch.no_grad()
    def encode(self, images: Sequence[str | Path | Image.Image]) -> torch.Tensor:
        """Images (paths or PIL images) → grid features (B, L, C), as ask_features reads them."""
        size = input_size(self.encoder.transform)
        return self.encoder.encode_images([img if isinstance(img, Image.Image) else load_image(img, size) for img in images])

    @torch.no_grad()
    def ask(self, image: str | Path | Image.Image, question: str, top_k: int = 5) -> Answer:
        """The top_k answers to a question about one image (a path or a PIL image)."""
        return self.answer([image], [question], top_k)[0]

    @torch.no_grad()
    def answer(self, images: Sequence[str | Path | Image.Image], questions: Sequence[str], top_k: int = 5, batch_size: int = 16) -> list[Answer]:
        """One question per image, answered in batches of `batch_size` images."""
        if len(images) != len(questions):
            raise ValueError(f"{len(questions)} questions for {len(images)} images")
        for question in questions:
            self.check_question(question)  # before any image is decoded
        answers: list[Answer] = []
        for start in range(0, len(images), batch_size):
            end = start + batch_size
            answers += self.ask_features(self.encode(images[start:end]), questions[start:end], top_k)
        return answers

    @torch.no_grad()
    def ask_features(
        self, features: torch.Tensor, questions: Sequence[str], top_k: int = 5, strict: bool = True, image_index: torch.Tensor | None = None
    ) -> list[Answer]:
        """Grid features (B, L, C) and one question per grid → answers (skips the encoder; used with feature caches).

        With image_index (B,), features (N, L, C) hold each image once and question b is about image image_index[b].
        strict=False answers questions it cannot read (from the answer prior) instead of refusing them, as an
        evaluation over a dataset must."""
        expected = len(features) if image_index is None else len(image_index)
        if len(questions) != expected:
            raise ValueError(f"{len(questions)} questions for {expected} feature grids")
        if strict:
            for question in questions:
                self.check_question(question)
        ids, lengths = self.encode_questions(questions)
        index = None if image_index is None else image_index.to(self.device)
        probs, indices, alphas = self.model.predict(features.to(self.device).float(), ids, lengths, top_k, index)
        return [
            Answer([(self.answer_vocab[i], p) for i, p in zip(idx.tolist(), prob.tolist())], a.float().cpu().numpy())
            for prob, idx, a in zip(probs, indices, alphas)
        ]
