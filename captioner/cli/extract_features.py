"""captioner extract-features --annotations A.json [B.json ...] --images DIR --out CACHE [--encoder NAME]"""

import argparse

from captioner.cli.caption import add_device_argument, default_workers, non_negative_int, positive_int


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", default="auto",
                        help="caption files: coco (a COCO captions JSON), karpathy (a split file such as "
                             "dataset_flickr8k.json) or auto (told by content; the default)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", nargs="+", required=True,
                        help="caption file(s) naming the images: COCO-format, or Karpathy-format (every split)")
    add_format_argument(parser)
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument("--out", required=True, help="cache folder to create")
    parser.add_argument("--encoder", help="registry name (default: efficientnet_lite0)")
    parser.add_argument("--checkpoint", help="a model file whose encoder to run, fine-tuned weights and settings "
                                             "included (instead of --encoder and its options)")
    parser.add_argument("--image-size", type=positive_int, help="input side in pixels (default: the encoder's own)")
    parser.add_argument("--pool-size", type=positive_int)
    parser.add_argument("--weights-path", help="local weights file for the encoder")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--workers", type=non_negative_int, default=default_workers(),
                        help="image-decoding worker processes (default: one per core beyond two, at most 4)")
    add_device_argument(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true", help="replace an existing cache")
    parser.add_argument("--mirror", action="store_true",
                        help="cache the photos mirrored left ↔ right (training augmentation: data.mirror_features_dir)")


def run(args: argparse.Namespace) -> int:
    from captioner.data.features import extract_features
    from captioner.devices import resolve_device
    from captioner.progress import progress

    device = resolve_device(args.device)
    encoder = _encoder(args).to(device)
    images = _image_paths(args)
    bar = progress(len(images), "extract-features", quiet=args.quiet)
    cache, stats = extract_features(encoder, images, args.out, args.batch_size, args.workers, overwrite=args.force,
                                    on_progress=bar.update, mirror=args.mirror)
    bar.close()
    grid = "×".join(map(str, encoder.grid_size))
    print(f"cached {stats['images']} {'mirrored ' if args.mirror else ''}grids ({grid}×{encoder.channels}, float16) in {cache.path}: "
          f"{stats['images_per_s']:.1f} images/s, {len(stats['failed'])} unreadable")
    for error in stats["failed"][:10]:
        print(f"  skipped: {error}")
    return 1 if stats["failed"] else 0


def _encoder(args: argparse.Namespace):
    """The encoder a model file carries (--checkpoint), or a registry encoder with its options."""
    from captioner.checkpoint import encoder_from_payload, load_model_file
    from captioner.encoders import build_encoder
    from captioner.errors import CaptionerError

    if args.checkpoint is None:
        return build_encoder(args.encoder or "efficientnet_lite0", weights_path=args.weights_path,
                             image_size=args.image_size, pool_size=args.pool_size)
    given = [flag for flag, value in [("--encoder", args.encoder), ("--image-size", args.image_size),
                                      ("--pool-size", args.pool_size), ("--weights-path", args.weights_path)] if value]
    if given:
        raise CaptionerError(f"--checkpoint brings its own encoder settings; drop {', '.join(given)}")
    encoder, _ = encoder_from_payload(load_model_file(args.checkpoint, None), args.checkpoint)
    return encoder


def _image_paths(args: argparse.Namespace) -> dict:
    """id → path of every image the caption files name; a one-line error when --images is not a folder or holds
    none of them (a wrong folder would otherwise build an empty cache, skipping every image by name)."""
    from pathlib import Path

    from captioner.data.coco import read_captions
    from captioner.errors import CaptionerError

    folder = Path(args.images)
    if not folder.is_dir():
        raise CaptionerError(f"--images {folder}: " + ("not a folder" if folder.exists() else "no such folder"))
    images: dict[int, Path] = {}
    for annotations in args.annotations:
        index = read_captions(annotations, args.format)
        images.update({i: folder / name for i, name in index.files.items()})
    if images and not any(path.is_file() for path in images.values()):
        example = next(iter(images.values())).relative_to(folder)
        raise CaptionerError(f"none of the {len(images)} images the caption file(s) name is in {folder} "
                             f"(e.g. {example}); is --images the right folder?")
    return images
