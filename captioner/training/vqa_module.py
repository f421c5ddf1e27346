"""VQAModule: the Lightning wrapper that owns the VQA loss, the official accuracy on the val split, logging and
optimisation."""

import pytorch_lightning as pl
import torch

from captioner.config import EncoderConfig, OptimConfig
from captioner.data.vqa import AnswerVocabulary
from captioner.encoders import ImageEncoder
from captioner.evaluation.vqa_accuracy import vqa_accuracy
from captioner.models.vqa import VQAModel
from captioner.text import Vocabulary
from captioner.training.guards import check_finite, report_skipped
from captioner.training.optim import build_optimizer
from captioner.vqa_inference import VQAAnswerer


def images_once(image_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """image_ids (B,) → rows (N,): one batch row per distinct image, index (B,): each question's position in rows."""
    unique, index = torch.unique(image_ids, return_inverse=True)  # (N,), (B,)
    rows = torch.zeros_like(unique).scatter_(0, index, torch.arange(len(image_ids), device=image_ids.device))  # (N,)
    return rows, index


class VQAModule(pl.LightningModule):
    def __init__(
        self,
        encoder: ImageEncoder,
        model: VQAModel,
        question_vocab: Vocabulary,
        answer_vocab: AnswerVocabulary,
        encoder_config: EncoderConfig,
        optim: OptimConfig,
        max_question_len: int = 20,
    ) -> None:
        super().__init__()
        self.encoder, self.model = encoder, model
        self.question_vocab, self.answer_vocab = question_vocab, answer_vocab
        self.encoder_config, self.optim_config, self.max_question_len = encoder_config, optim, max_question_len
        self._predictions: dict[int, str] = {}
        self._annotations: list[dict] = []

    def encode(self, batch: dict, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Grid features (N, L, C) of the batch's rows `rows` (all by default), from a feature cache or by running
        the encoder (without grad when frozen)."""
        if "features" in batch:
            return batch["features"] if rows is None else batch["features"][rows]
        images = batch["images"] if rows is None else batch["images"][rows]
        with torch.set_grad_enabled(self.training and self.encoder.trainable_stages > 0):
            return self.encoder(images)

    def model_step(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits (B, K)) of one batch; each image is encoded and projected once, however many questions it has."""
        if "image_index" in batch:  # collate_images_once stacked each image once
            rows, index = None, batch["image_index"]
        else:
            rows, index = images_once(batch["image_ids"])
        logits, _ = self.model(self.encode(batch, rows), batch["questions"], batch["question_lengths"], index)
        return self.model.loss(logits, batch["targets"]), logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        if not report_skipped(self, batch):
            return None  # every image of this batch was unreadable
        loss, _ = self.model_step(batch)
        self.log("train/loss", check_finite(loss, self.global_step), prog_bar=True, batch_size=len(batch["questions"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if not report_skipped(self, batch):
            return
        loss, logits = self.model_step(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=len(batch["questions"]))
        best = logits.argmax(dim=1).tolist()  # (B,)
        self._predictions.update({int(q): self.answer_vocab[i] for q, i in zip(batch["question_ids"], best)})
        self._annotations += batch["annotation"]

    def on_validation_epoch_end(self) -> None:
        if self._annotations:
            scores = vqa_accuracy(self._predictions, self._annotations, digits=None)
            per_type = {f"val/accuracy_{kind.replace('/', '_')}": value for kind, value in scores.per_answer_type.items()}
            self.log_dict(per_type)
            self.log("val/accuracy", scores.overall, prog_bar=True)
        self._predictions, self._annotations = {}, []

    def configure_optimizers(self) -> dict:
        return build_optimizer(self.model, self.encoder, self.optim_config, self.trainer.estimated_stepping_batches)

    def to_answerer(self, meta: dict | None = None) -> VQAAnswerer:
        return VQAAnswerer(self.encoder, self.model, self.question_vocab, self.answer_vocab, self.encoder_config,
                           self.max_question_len, meta)

    def export(self, path, meta: dict | None = None, force: bool = False):
        was_training = self.training
        exported = self.to_answerer(meta).save(path, force=force)
        self.train(was_training)
        return exported

