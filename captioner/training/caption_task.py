"""The `caption` task: builds encoder, vocabulary, decoder, CaptioningModule and DataModule from a RunConfig."""

import dataclasses

from captioner.config import TASKS, RunConfig, TaskSpec
from captioner.encoders import encoder_from_config
from captioner.errors import CaptionerError
from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
from captioner.training.caption_module import CaptioningModule
from captioner.training.datamodules import CaptionDataConfig, CaptionDataModule


def build_caption_task(config: RunConfig) -> tuple[CaptioningModule, CaptionDataModule]:
    if config.model.attention_supervision > 0 and not config.data.train_boxes:
        raise CaptionerError("model.attention_supervision needs boxes to supervise with: set data.train_boxes to a COCO instances file")
    encoder = encoder_from_config(config.encoder)
    datamodule = CaptionDataModule(config.data, encoder)
    vocab = datamodule.vocab
    decoder_config = dataclasses.replace(config.model, vocab_size=len(vocab), feature_dim=encoder.channels)
    module = CaptioningModule(
        encoder, CaptionDecoder(decoder_config), vocab, config.encoder, config.optim, max_len=config.data.max_caption_len
    )
    return module, datamodule


TASKS.register("caption")(TaskSpec(CaptionDataConfig, DecoderConfig, build_caption_task, monitor="val/bleu4"))
