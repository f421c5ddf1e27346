"""Two yardsticks for a trained captioner on a COCO-format split, scored with the COCO suite: nearest-neighbour
caption retrieval, and a human (each image's first reference caption scored against its other references).

    python scripts/knn_baseline.py --train ../shared/data/coco-mini/captions_train.json \
        --val ../shared/data/coco-mini/captions_val.json --features data/coco-mini-lite0-224
"""

import argparse
import json

import numpy as np

from captioner.data.coco import load_coco_captions
from captioner.data.features import FeatureCache
from captioner.evaluation.caption_metrics import evaluate_captions
from captioner.evaluation.knn_baseline import knn_captions


def pooled(cache: FeatureCache, ids: list[int]) -> np.ndarray:
    return np.stack([cache[i].astype(np.float32).mean(axis=0) for i in ids])  # (N, L, C) → (N, C)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--features", required=True, help="feature cache holding train and val images")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", help="write the scores as JSON here")
    args = parser.parse_args()
    cache = FeatureCache(args.features)
    train, val = load_coco_captions(args.train), load_coco_captions(args.val)
    train_ids, val_ids = sorted(train.imgToAnns), sorted(val.imgToAnns)
    train_captions = [[a["caption"] for a in train.imgToAnns[i]] for i in train_ids]
    captions = knn_captions(pooled(cache, val_ids), pooled(cache, train_ids), train_captions, k=args.k)
    references = {i: [a["caption"] for a in val.imgToAnns[i]] for i in val_ids}
    scores = evaluate_captions(dict(zip(val_ids, captions)), references)
    print(f"k-NN (k={args.k}) on {len(val_ids)} images: {scores}")
    human = evaluate_captions({i: refs[0] for i, refs in references.items()}, {i: refs[1:] for i, refs in references.items()})
    print(f"human (first reference vs the others) on {len(val_ids)} images: {human}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({f"knn (k={args.k})": scores.scores, "human": human.scores}, f, indent=2)


if __name__ == "__main__":
    main()
