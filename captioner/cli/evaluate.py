"""captioner evaluate [--checkpoint PATH ...] --annotations CAPTIONS.json --images DIR [--split test] [--beam K | --consensus] [--boxes FILE]
[--out DIR]"""

import argparse
from pathlib import Path

from captioner.cli.caption import (add_checkpoint_argument, add_decoding_arguments, add_device_argument, decoding_options, default_workers, load_captioner,
                                   non_negative_int, positive_int)
from captioner.cli.extract_features import add_format_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(parser)
    parser.add_argument("--annotations", required=True,
                        help="the references: a COCO-format captions JSON, or a Karpathy split file (dataset_flickr8k.json)")
    add_format_argument(parser)
    parser.add_argument("--split", default="test",
                        help="Karpathy files: the split to evaluate (default test; COCO-format files are one split)")
    parser.add_argument("--images", required=True, help="folder with the images")
    parser.add_argument("--features", help="feature cache from `captioner extract-features` (skips image decoding)")
    add_decoding_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--workers", type=non_negative_int, default=default_workers(),
                        help="image-decoding worker processes (default: one per core beyond two, at most 4)")
    parser.add_argument("--max-images", type=positive_int, help="evaluate only the first N images")
    add_device_argument(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--boxes", metavar="FILE", help="COCO instances file of these images: also report how much of "
                        "each generated word's attention falls in the boxes of the category it names (grounding)")
    parser.add_argument("--out", help="write results.json (COCO results format) and scores.json here")
    parser.add_argument("--force", action="store_true", help="overwrite existing result files")


def run(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader

    from captioner.data.collate import collate
    from captioner.evaluation.caption_metrics import evaluate_captions, write_coco_results, write_scores
    from captioner.evaluation.run import caption_batches
    from captioner.progress import progress

    out = Path(args.out) if args.out else None
    if out and not args.force and any((out / name).exists() for name in ("results.json", "scores.json")):
        from captioner.errors import CaptionerError

        raise CaptionerError(f"{out} already holds results; pass --force to overwrite them")
    captioner = load_captioner(args.checkpoint, args.hard_inference, args.device)
    dataset = _eval_dataset(args, captioner)
    regions = _word_regions(args.boxes, dataset, captioner) if args.boxes else None  # a bad file fails before captioning
    loader = DataLoader(dataset, batch_size=args.batch_size, collate_fn=collate, num_workers=args.workers)
    bar = progress(len(dataset), "evaluate", quiet=args.quiet)
    captions = caption_batches(captioner, loader, on_progress=bar.update, **decoding_options(args))
    bar.close()
    results = {i: c.text for i, c in captions.items()}
    references = {i: dataset.captions_for(i) for i in results}
    scores = evaluate_captions(results, references)
    decoding = "consensus" if args.consensus else f"beam {args.beam}"
    print(f"{len(results)} images, {decoding}: {scores}")
    grounding = _grounding(captions, regions) if regions else None
    if out:
        write_coco_results(results, out / "results.json")
        write_scores(scores, out / "scores.json", grounding)
    return 0


def _word_regions(path: str, dataset, captioner):
    from captioner.data.boxes import WordRegions, read_instances

    return WordRegions(read_instances(path, dataset.image_sizes()), captioner.encoder.geometry)


def _grounding(captions: dict, regions) -> dict:
    from captioner.evaluation.grounding import format_grounding, word_grounding

    grounding = word_grounding(captions, regions)
    print(format_grounding(grounding))
    return grounding


def _eval_dataset(args: argparse.Namespace, captioner):
    from captioner.data.coco import CocoCaptions, SubsetSpec
    from captioner.data.features import FeatureCache

    options = {"mode": "eval", "format": args.format, "split": args.split,
               "subset": SubsetSpec(max_images=args.max_images) if args.max_images else None}
    if args.features:
        cache = FeatureCache(args.features)
        cache.check_compatible(captioner.encoder.describe())
        return CocoCaptions(args.annotations, args.images, features=cache, **options)
    return CocoCaptions(args.annotations, args.images, transform=captioner.encoder.transform, **options)
