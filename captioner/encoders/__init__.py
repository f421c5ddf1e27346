"""Encoder registry: `build_encoder(name, ...)` returns an ImageEncoder mapping (B, 3, H, W) → (B, L, C)."""

from captioner.encoders import efficientnet, resnet, tiny  # noqa: F401  (registers the builders)
from captioner.encoders.base import ImageEncoder, description_differences, encode_in_chunks
from captioner.encoders.registry import ENCODERS


def build_encoder(
    name: str = "efficientnet_lite0",
    *,
    pretrained: bool = True,
    weights_path: str | None = None,
    image_size: int | None = None,
    pool_size: int | None = None,
    trainable_stages: int | None = None,
) -> ImageEncoder:
    """Build a registered encoder; an unknown name raises a CaptionerError listing the known ones."""
    builder = ENCODERS.get(name)
    kwargs: dict = {"pretrained": pretrained, "weights_path": weights_path, "pool_size": pool_size}
    if image_size is not None:
        kwargs["image_size"] = image_size
    if trainable_stages is not None:
        kwargs["trainable_stages"] = trainable_stages
    return builder(**kwargs)


def list_encoders() -> list[str]:
    return ENCODERS.names()


__all__ = ["ImageEncoder", "build_encoder", "description_differences", "encode_in_chunks", "encoder_from_config", "list_encoders", "ENCODERS"]


def encoder_from_config(config, pretrained: bool | None = None) -> ImageEncoder:
    """Build from an `EncoderConfig` (captioner.config); `pretrained` overrides the config's flag."""
    return build_encoder(
        config.name,
        pretrained=config.pretrained if pretrained is None else pretrained,
        weights_path=config.weights_path,
        image_size=config.image_size,
        pool_size=config.pool_size,
        trainable_stages=config.trainable_stages,
    )
