#!/usr/bin/env bash
# Rebuild captioner/assets/captioner-coco-mini.pt from coco-mini: the cross-entropy stage, eight self-critical
# runs from it, and their uniform weight average (a model soup, Wortsman et al. 2022). About 3 hours on 2 CPU
# cores (the SCST runs take ~20 min each and can run side by side). COCO_MINI defaults to ../shared/data/coco-mini.
set -euo pipefail
COCO_MINI=${COCO_MINI:-../shared/data/coco-mini}
DATA="data.train_annotations=$COCO_MINI/captions_train.json data.val_annotations=$COCO_MINI/captions_val.json data.images_dir=$COCO_MINI/images"
GROUNDED="$DATA data.train_boxes=$COCO_MINI/persons_train.json"

captioner extract-features --encoder efficientnet_lite0_448 --annotations "$COCO_MINI"/captions_{train,val}.json \
    --images "$COCO_MINI/images" --out data/coco-mini-efficientnet_lite0_448
captioner train --config configs/caption_coco_mini.yaml $DATA                    # → runs/coco_mini_xe/model.pt

scst() { captioner train --config configs/caption_coco_mini_scst.yaml $DATA "$@"; }
scst_grounded() { captioner train --config configs/caption_coco_mini_scst_grounded.yaml $GROUNDED "$@"; }
scst trainer.out_dir=runs/scst_seed0
scst seed=1 trainer.out_dir=runs/scst_seed1
scst seed=2 trainer.out_dir=runs/scst_seed2
scst seed=3 trainer.out_dir=runs/scst_seed3
scst training.scst_baseline=greedy trainer.out_dir=runs/scst_greedy
scst_grounded trainer.out_dir=runs/scst_grounded_seed0
scst_grounded seed=1 trainer.out_dir=runs/scst_grounded_seed1
scst_grounded model.attention_supervision=0.3 training.scst_xe_weight=0.3 trainer.out_dir=runs/scst_grounded_03

captioner average runs/coco_mini_soup/model.pt runs/scst_{seed0,seed1,seed2,seed3,greedy,grounded_seed0,grounded_seed1,grounded_03}/model.pt \
    --recipe "the 8 self-critical runs of scripts/train_shipped_captioner.sh" --force
echo "to ship it: cp runs/coco_mini_soup/model.pt captioner/assets/captioner-coco-mini.pt"
