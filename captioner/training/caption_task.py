"""The `caption` task: builds encoder, vocabulary, decoder, CaptioningModule and DataModule from a RunConfig.

With `training.init_from`, the encoder, decoder and vocabulary come from that model file (self-critical training
starts from a cross-entropy model this way); the config's `encoder` and `model` sections, when given, must agree,
except for the model's loss weights (`LOSS_WEIGHTS`) and the encoder's `trainable_stages`, which the config sets for
the new run (fine-tuning the encoder's top stages once the decoder has learnt on the frozen grid).
"""

import dataclasses

from captioner.config import TASKS, EncoderConfig, RunConfig, TaskSpec
from captioner.encoders import encoder_from_config
from captioner.errors import CaptionerError
from captioner.inference import Captioner
from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
from captioner.models.decoders import build_decoder
from captioner.text import Vocabulary
from captioner.training.caption_module import CaptioningModule
from captioner.training.caption_objectives import CaptionTrainingConfig
from captioner.training.datamodules import CaptionDataConfig, CaptionDataModule

# Decoder fields that weigh training losses and shape no weight: a run started from a model file may set them anew.
LOSS_WEIGHTS = ("alpha_c", "penalty_reduction", "attention_supervision", "attention_supervision_loss")


def build_caption_task(config: RunConfig) -> tuple[CaptioningModule, CaptionDataModule]:
    if config.model.attention_supervision > 0 and not config.data.train_boxes:
        raise CaptionerError("model.attention_supervision needs boxes to supervise with: set data.train_boxes to a COCO instances file")
    if config.training.init_from:
        return _from_model_file(config)
    _check_cache_fits(config, config.encoder)
    encoder = encoder_from_config(config.encoder)
    datamodule = CaptionDataModule(config.data, encoder)
    decoder_config = dataclasses.replace(config.model, vocab_size=len(datamodule.vocab), feature_dim=encoder.channels)
    return _module(config, encoder, build_decoder(decoder_config), datamodule), datamodule


def _from_model_file(config: RunConfig) -> tuple[CaptioningModule, CaptionDataModule]:
    path = config.training.init_from
    start = Captioner.load(None if path == "shipped" else path)  # missing, VQA or broken model files are refused here
    _check_sections_agree(config, start, path)
    encoder_config = start.encoder_config
    if "encoder" in config.given:  # trained stages stay marked, so their weights stay in the new model file
        encoder_config = dataclasses.replace(encoder_config, trainable_stages=config.encoder.trainable_stages,
                                             fine_tuned=encoder_config.tuned)
    _check_cache_fits(config, encoder_config)
    start.encoder.set_trainable_stages(encoder_config.trainable_stages)
    datamodule = CaptionDataModule(config.data, start.encoder, vocab=start.vocab)
    _check_vocabulary(config, start.vocab, datamodule, path)
    if "model" in config.given:
        start.decoder.config = dataclasses.replace(start.decoder.config, **{f: getattr(config.model, f) for f in LOSS_WEIGHTS})
    return _module(dataclasses.replace(config, encoder=encoder_config), start.encoder.train(), start.decoder.train(), datamodule), datamodule


def _module(config: RunConfig, encoder, decoder: CaptionDecoder, datamodule: CaptionDataModule) -> CaptioningModule:
    references = datamodule.train_set.references()  # SCST's reward; the model file's consensus statistics
    return CaptioningModule(encoder, decoder, datamodule.vocab, config.encoder, config.optim,
                            max_len=config.data.max_caption_len, training=config.training, train_references=references)


def _check_cache_fits(config: RunConfig, encoder: EncoderConfig) -> None:
    """An encoder that trains must see the photos: a feature cache holds fixed weights' grids. (A fine-tuned encoder
    frozen again may read a cache of its own grids, `extract-features --checkpoint`; the cache check names its
    weights.)"""
    if encoder.trainable_stages > 0 and config.data.features_dir is not None:
        raise CaptionerError(f"the encoder trains {encoder.trainable_stages} stages, which a feature cache cannot "
                             f"follow: set data.features_dir=null to train from the images")


def _check_sections_agree(config: RunConfig, start: Captioner, path: str) -> None:
    """A config that spells out `encoder` or `model` must describe the model file it starts from."""
    if "encoder" in config.given:
        wanted, found = encoder_from_config(config.encoder, pretrained=False).describe(), start.encoder.describe()
        settings = [k for k in found if k != "weights"]  # a config names settings; fine-tuned weights are the file's
        _refuse_differences(path, "encoder", {k: (found[k], wanted.get(k)) for k in settings})
    if "model" in config.given:
        wanted, found = config.model, start.decoder.config
        fields = [f.name for f in dataclasses.fields(found) if f.name not in ("vocab_size", "feature_dim", *LOSS_WEIGHTS)]
        _refuse_differences(path, "model", {k: (getattr(found, k), getattr(wanted, k)) for k in fields})


def _refuse_differences(path: str, section: str, values: dict) -> None:
    differ = [f"{k} {found!r} (config: {wanted!r})" for k, (found, wanted) in values.items() if found != wanted]
    if differ:
        raise CaptionerError(f"training.init_from {path} has another {section} than the config: {'; '.join(differ[:3])}")


def _check_vocabulary(config: RunConfig, vocab: Vocabulary, datamodule: CaptionDataModule, path: str) -> None:
    """The model file's vocabulary must be the one the config's training data gives (same words, same ids)."""
    c = config.data
    rebuilt = Vocabulary.build(datamodule.train_set.all_captions(), c.vocab_min_count, c.vocab_max_size)
    if rebuilt != vocab:
        first = next((f"id {i}: {a!r} vs {b!r}" for i, (a, b) in enumerate(zip(vocab.itos, rebuilt.itos)) if a != b),
                     f"{len(vocab)} vs {len(rebuilt)} words")
        raise CaptionerError(f"training.init_from {path} has another vocabulary ({len(vocab)} words) than the config's "
                             f"training captions give ({len(rebuilt)}; first difference {first})")


TASKS.register("caption")(
    TaskSpec(CaptionDataConfig, DecoderConfig, build_caption_task, monitor="val/cider", training_config=CaptionTrainingConfig)
)
