"""CaptioningModule: the Lightning wrapper that owns loss, validation BLEU, logging and optimisation."""

import pytorch_lightning as pl
import torch

from captioner.config import EncoderConfig, OptimConfig
from captioner.encoders import ImageEncoder
from captioner.evaluation.bleu import corpus_bleu
from captioner.inference import Captioner
from captioner.models.caption_decoder import CaptionDecoder
from captioner.models.decoding import generate
from captioner.models.losses import caption_loss
from captioner.text import Vocabulary, tokenize
from captioner.training.guards import check_finite, report_skipped
from captioner.training.optim import build_optimizer


class CaptioningModule(pl.LightningModule):
    def __init__(
        self,
        encoder: ImageEncoder,
        decoder: CaptionDecoder,
        vocab: Vocabulary,
        encoder_config: EncoderConfig,
        optim: OptimConfig,
        max_len: int = 20,
    ) -> None:
        super().__init__()
        self.encoder, self.decoder, self.vocab = encoder, decoder, vocab
        self.encoder_config, self.optim_config, self.max_len = encoder_config, optim, max_len
        self._hypotheses: list[list[str]] = []
        self._references: list[list[list[str]]] = []

    def encode(self, batch: dict) -> torch.Tensor:
        """Grid features (B, L, C) from a feature cache or by running the encoder (without grad when frozen)."""
        if "features" in batch:
            return batch["features"]
        with torch.set_grad_enabled(self.training and self.encoder.trainable_stages > 0):
            return self.encoder(batch["images"])

    def model_step(self, features: torch.Tensor, captions: torch.Tensor, grounding: torch.Tensor | None = None,
                   grounding_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return caption_loss(self.decoder, self.decoder(features, captions), captions, grounding=grounding, grounding_mask=grounding_mask)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        if not report_skipped(self, batch):
            return None  # every image of this batch was unreadable
        terms = self.model_step(self.encode(batch), batch["captions"], batch.get("grounding"), batch.get("grounding_mask"))
        loss = check_finite(terms["loss"], self.global_step)
        batch_size = len(batch["captions"])
        self.log("train/loss", terms.pop("loss"), prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=batch_size)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if not report_skipped(self, batch):
            return
        features = self.encode(batch)  # once per image, whatever the number of its references
        captions, owners = self._reference_batch(batch["references"])
        terms = self.model_step(features.index_select(0, owners), captions)  # (R, L, C): grid repeated per reference
        self.log("val/loss", terms["loss"], prog_bar=True, batch_size=len(captions))
        generated = generate(self.decoder, features, "greedy", max_len=self.max_len)
        self._hypotheses += [self.vocab.decode_tokens(t) for t in generated.tokens]
        self._references += [[tokenize(r) for r in refs] for refs in batch["references"]]

    def on_validation_epoch_end(self) -> None:
        if self._hypotheses:
            bleu = corpus_bleu(self._hypotheses, self._references)
            self.log_dict({f"val/bleu{n}": score for n, score in enumerate(bleu[:3], start=1)})
            self.log("val/bleu4", bleu[3], prog_bar=True)
        self._hypotheses, self._references = [], []

    def _reference_batch(self, references: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """All references of the batch as padded ids (R, T) and, for each, the index of its image (R,)."""
        encoded = [torch.tensor(self.vocab.encode(r)[: self.max_len + 2]) for refs in references for r in refs]
        owners = torch.tensor([i for i, refs in enumerate(references) for _ in refs], device=self.device)
        captions = torch.nn.utils.rnn.pad_sequence(encoded, batch_first=True, padding_value=self.vocab.pad_id)
        return captions.to(self.device), owners

    def configure_optimizers(self) -> dict:
        return build_optimizer(self.decoder, self.encoder, self.optim_config, self.trainer.estimated_stepping_batches)

    def to_captioner(self, meta: dict | None = None) -> Captioner:
        return Captioner(self.encoder, self.decoder, self.vocab, self.encoder_config, meta)

    def export(self, path, meta: dict | None = None, force: bool = False):
        was_training = self.training
        exported = self.to_captioner(meta).save(path, force=force)
        self.train(was_training)
        return exported
