"""Supervised attention (Liu et al. 2017): the loss on toy maps, the per-word targets of each image's references,
and training with them."""

import math

import pytest
import torch

from captioner.data.boxes import WordRegions, read_instances
from captioner.data.coco import CocoCaptions
from captioner.data.collate import collate, stack_grounding
from captioner.data.shapes import SHAPES
from captioner.errors import CaptionerError
from captioner.grid import GridGeometry
from captioner.inference import Captioner
from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
from captioner.models.losses import caption_loss, grounding_loss
from captioner.text import Vocabulary
from captioner.text.categories import word_categories
from captioner.training.caption_module import encode_caption
from captioner.training.runner import train
from helpers import tiny_caption_config

BOX = torch.tensor([1.0, 1.0, 0.0, 0.0])  # a word's boxes cover the first two of four locations


def maps(*rows: list[float]) -> torch.Tensor:
    return torch.tensor([rows])  # (B=1, T, L)


def test_mass_loss_is_zero_inside_the_boxes_and_log_two_for_half():
    target, mask = BOX.expand(1, 3, 4), torch.tensor([[True, True, False]])
    alphas = maps([0.5, 0.5, 0, 0], [0.25, 0.25, 0.25, 0.25], [0, 0, 0, 1])  # the third word has no boxes
    assert grounding_loss(alphas[:, :1], target[:, :1], mask[:, :1]).item() == pytest.approx(0.0)
    assert grounding_loss(alphas, target, mask).item() == pytest.approx(math.log(2) / 2)  # mean over the 2 words
    assert grounding_loss(maps([1, 0, 0, 0]), BOX.expand(1, 1, 4)).item() == pytest.approx(0.0)  # anywhere inside; mask from target


def test_cross_entropy_pulls_towards_the_normalised_box_map():
    target, mask = BOX.expand(1, 1, 4), torch.tensor([[True]])
    spread = grounding_loss(maps([0.5, 0.5, 0, 0]), target, mask, form="cross_entropy")
    peaked = grounding_loss(maps([0.9, 0.1, 0, 0]), target, mask, form="cross_entropy")
    assert spread.item() == pytest.approx(math.log(2)) and peaked.item() > spread.item()


def test_no_grounded_word_gives_zero_with_a_gradient_path():
    logits = torch.zeros(2, 3, 4, requires_grad=True)
    loss = grounding_loss(logits.softmax(-1), torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None and not logits.grad.any()


@pytest.mark.parametrize("form", ["mass", "cross_entropy"])
def test_minimising_it_moves_the_attention_into_the_boxes(form):
    logits = torch.zeros(1, 1, 4, requires_grad=True)  # uniform: half the mass inside
    optimiser = torch.optim.SGD([logits], lr=1.0)
    for _ in range(50):
        optimiser.zero_grad()
        grounding_loss(logits.softmax(-1), BOX.expand(1, 1, 4), form=form).backward()
        optimiser.step()
    assert (logits.softmax(-1) * BOX).sum().item() > 0.95


def test_caption_loss_adds_lambda_times_the_grounding_term():
    torch.manual_seed(0)
    decoder = CaptionDecoder(DecoderConfig(vocab_size=10, feature_dim=8, embed_dim=8, hidden_dim=8, attention_dim=8,
                                           attention_supervision=2.0)).eval()
    features, captions = torch.randn(2, 4, 8), torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])  # (B, L, C), (B, T+1)
    target = torch.zeros(2, 3, 4)
    target[0, 1] = BOX  # the second word of the first caption names something in locations 0–1
    output = decoder(features, captions)
    plain = caption_loss(decoder, output, captions)
    grounded = caption_loss(decoder, output, captions, grounding=target, grounding_mask=target.sum(-1) > 0)
    expected = -torch.log((output.alphas[0, 1] * BOX).sum())  # the map used when predicting that word
    assert grounded["grounding"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert grounded["loss"].item() == pytest.approx(plain["loss"].item() + 2.0 * expected.item(), rel=1e-5)


def test_image_samples_carry_word_regions_aligned_with_the_captions_trained_on(shapes):
    captions = CocoCaptions(shapes / "captions_train.json", shapes / "images", transform=lambda image: torch.zeros(1), mode="eval")
    vocab = Vocabulary.build(captions.all_captions())
    captions.regions = WordRegions(read_instances(shapes / "instances_train.json", captions.image_sizes()), GridGeometry((64, 64), 16))
    batch = collate([captions[i] for i in range(4)])  # 4 images, each with all its references
    references = [r for refs in batch["references"] for r in refs]
    encoded = [encode_caption(vocab, r, max_len=3) for r in references]  # as CaptioningModule.reference_batch
    T = max(map(len, encoded)) - 1  # the decoder predicts captions[:, 1:]
    targets, mask = stack_grounding(batch["grounding"], T, max_len=3)
    assert targets.shape == (len(references), T, 16) and mask.shape == (len(references), T)
    for row, ids in enumerate(encoded):
        words = vocab.decode_tokens(ids)  # at most 3 words, then <end>
        named = [i for i, category in enumerate(word_categories(words, SHAPES)) if category]
        assert mask[row].nonzero().flatten().tolist() == named, words
    assert mask.any()


def test_training_with_supervision_logs_the_grounding_term(shapes, tmp_path):
    result = train(tiny_caption_config(shapes, tmp_path / "run", f"data.train_boxes={shapes / 'instances_train.json'}",
                                       "model.attention_supervision=1.0", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1"))
    assert result.model_path.is_file() and result.metrics["train/grounding"] > 0
    with pytest.raises(CaptionerError, match="attention_supervision needs boxes"):
        train(tiny_caption_config(shapes, tmp_path / "none", "model.attention_supervision=1.0"))
    with pytest.raises(CaptionerError, match="is not in the captions file"):  # val boxes for the train captions
        train(tiny_caption_config(shapes, tmp_path / "val", f"data.train_boxes={shapes / 'instances_val.json'}"))


def test_self_critical_training_can_keep_the_references_cross_entropy_and_supervise_their_maps(shapes, tmp_path):
    xe = train(tiny_caption_config(shapes, tmp_path / "xe", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1"))
    scst = train(tiny_caption_config(shapes, tmp_path / "scst", f"data.train_boxes={shapes / 'instances_train.json'}",
                                     "model.attention_supervision=0.5", "training.objective=scst", f"training.init_from={xe.model_path}",
                                     "training.scst_xe_weight=0.5", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1"))
    assert scst.metrics["train/grounding"] > 0 and scst.metrics["train/nll"] > 0 and "train/reward" in scst.metrics
    assert Captioner.load(scst.model_path).decoder.config.attention_supervision == 0.5  # the new run's weight, kept
