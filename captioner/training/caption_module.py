"""CaptioningModule: the Lightning wrapper that owns the objective, free-running validation, logging and optimisation.

Batches hold images (or their cached grids) with all their reference captions: an image's grid is read and
projected once for all its captions. Validation decodes free-running, greedy and beam search, and scores
CIDEr-D and BLEU-4; the checkpoint is chosen on beam-search CIDEr-D (`val/cider`).
"""

from collections.abc import Mapping, Sequence

import pytorch_lightning as pl
import torch

from captioner.config import EncoderConfig, OptimConfig
from captioner.data.collate import stack_grounding
from captioner.encoders import ImageEncoder
from captioner.evaluation.bleu import corpus_bleu
from captioner.evaluation.cider import CiderD, corpus_cider
from captioner.inference import Captioner
from captioner.models.caption_decoder import CaptionDecoder
from captioner.models.decoding import generate
from captioner.models.losses import caption_loss
from captioner.text import Vocabulary, tokenize
from captioner.training.caption_objectives import OBJECTIVES, CaptionTrainingConfig, CiderReward, scheduled_sampling_prob
from captioner.training.guards import check_finite, report_skipped
from captioner.training.optim import build_optimizer


def encode_caption(vocab: Vocabulary, text: str, max_len: int) -> list[int]:
    """<start> w_1 … w_n <end> with at most max_len words (a longer caption keeps its first words and its <end>)."""
    ids = vocab.encode(text)
    return ids if len(ids) <= max_len + 2 else ids[: max_len + 1] + [vocab.end_id]


class CaptioningModule(pl.LightningModule):
    def __init__(
        self,
        encoder: ImageEncoder,
        decoder: CaptionDecoder,
        vocab: Vocabulary,
        encoder_config: EncoderConfig,
        optim: OptimConfig,
        max_len: int = 20,
        training: CaptionTrainingConfig | None = None,
        train_references: Mapping[int, Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        self.encoder, self.decoder, self.vocab = encoder, decoder, vocab
        self.encoder_config, self.optim_config, self.max_len = encoder_config, optim, max_len
        self.training_config = training or CaptionTrainingConfig()
        self.objective = OBJECTIVES.get(self.training_config.objective)
        needs_reward = self.training_config.objective == "scst"
        if needs_reward and not train_references:
            raise ValueError("self-critical training needs the training references for its CIDEr-D reward")
        self.reward = CiderReward(train_references) if needs_reward else None
        self.train_references = train_references  # their document frequencies go into the model file (consensus)
        self.sample_prob = 0.0  # scheduled sampling, set at each epoch start
        self._decoded: dict[str, dict[int, str]] = {"greedy": {}, "beam": {}}
        self._references: dict[int, list[str]] = {}

    def encode(self, batch: dict) -> torch.Tensor:
        """Grid features (B, L, C) from a feature cache or by running the encoder (without grad when frozen)."""
        if "features" in batch:
            return batch["features"]
        with torch.set_grad_enabled(self.training and self.encoder.trainable_stages > 0):
            return self.encoder(batch["images"])

    def reference_batch(self, references: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """All references of the batch as padded ids (R, T+1) and, for each, the index of its image (R,)."""
        encoded = [torch.tensor(encode_caption(self.vocab, r, self.max_len)) for refs in references for r in refs]
        owners = torch.tensor([i for i, refs in enumerate(references) for _ in refs], device=self.device)
        captions = torch.nn.utils.rnn.pad_sequence(encoded, batch_first=True, padding_value=self.vocab.pad_id)
        return captions.to(self.device), owners

    def grounding_batch(self, batch: dict, steps: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The per-word grounding targets (R, steps, L) of reference_batch's captions and their mask (R, steps);
        (None, None) when the batch carries none (no data.train_boxes)."""
        if "grounding" not in batch:
            return None, None
        targets, mask = stack_grounding(batch["grounding"], steps, self.max_len)
        return targets.to(self.device), mask.to(self.device)

    # -- training -------------------------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self.sample_prob = scheduled_sampling_prob(self.current_epoch, self.training_config)
        self.log("train/sample_prob", self.sample_prob)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        if not report_skipped(self, batch):
            return None  # every image of this batch was unreadable
        terms = self.objective(self, batch, self.encode(batch))
        loss = check_finite(terms["loss"], self.global_step)
        batch_size = len(batch["references"])
        self.log("train/loss", terms.pop("loss"), prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=batch_size)
        return loss

    # -- validation: free-running decoding --------------------------------------------------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if not report_skipped(self, batch):
            return
        features = self.encode(batch)  # once per image, whatever the number of its references
        captions, owners = self.reference_batch(batch["references"])
        terms = caption_loss(self.decoder, self.decoder(features, captions, owners=owners), captions)
        self.log("val/loss", terms["loss"], prog_bar=True, batch_size=len(captions))
        ids = [int(i) for i in batch["image_ids"]]
        beam = self.training_config.val_beam_size
        for name, options in (("greedy", {"strategy": "greedy"}), ("beam", {"strategy": "beam", "beam_size": beam})):
            generated = generate(self.decoder, features, max_len=self.max_len, **options)
            self._decoded[name].update({i: " ".join(self.vocab.decode_tokens(t)) for i, t in zip(ids, generated.tokens)})
        self._references.update({i: [" ".join(tokenize(r)) for r in refs] for i, refs in zip(ids, batch["references"])})

    def on_validation_epoch_end(self) -> None:
        if self._references:
            references = [self._references[i] for i in self._references]
            for name, decoded in self._decoded.items():
                suffix = "" if name == "beam" else f"_{name}"
                bleu = corpus_bleu([decoded[i].split() for i in self._references], [[r.split() for r in refs] for refs in references])
                self.log(f"val/bleu4{suffix}", bleu[3], prog_bar=not suffix)
                self.log(f"val/cider{suffix}", corpus_cider(decoded, self._references), prog_bar=not suffix)
        self._decoded, self._references = {"greedy": {}, "beam": {}}, {}

    def configure_optimizers(self) -> dict:
        return build_optimizer(self.decoder, self.encoder, self.optim_config, self.trainer.estimated_stepping_batches)

    def to_captioner(self, meta: dict | None = None) -> Captioner:
        consensus = None
        if self.train_references:
            consensus = CiderD([" ".join(tokenize(r)) for r in refs] for refs in self.train_references.values())
        return Captioner(self.encoder, self.decoder, self.vocab, self.encoder_config, meta, consensus)

    def export(self, path, meta: dict | None = None, force: bool = False):
        was_training = self.training
        exported = self.to_captioner(meta).save(path, force=force)
        self.train(was_training)
        return exported
