"""The caption decoders by `DecoderConfig.architecture`: every one drives the same step API and teacher forcing."""

from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
from captioner.models.up_down import UpDownDecoder
from captioner.registry import Registry

DECODERS: Registry[type[CaptionDecoder]] = Registry("decoder architecture")
DECODERS.register("show_attend_tell")(CaptionDecoder)
DECODERS.register("up_down")(UpDownDecoder)


def build_decoder(config: DecoderConfig) -> CaptionDecoder:
    return DECODERS.get(config.architecture)(config)
