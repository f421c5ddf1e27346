"""What a captioning training step optimises: cross-entropy (with optional scheduled sampling) or self-critical
CIDEr-D (Rennie et al. 2017), picked by `training.objective` in the config."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from captioner.data.mirror import mirror_caption
from captioner.errors import CaptionerError
from captioner.evaluation.cider import CiderD, Vector
from captioner.models.decoding import generate
from captioner.models.losses import caption_loss
from captioner.models.caption_decoder import CaptionDecoder
from captioner.models.self_critical import BASELINES, CANDIDATES, Samples, self_critical_loss
from captioner.registry import Registry
from captioner.text import END, Vocabulary, tokenize


@dataclass
class CaptionTrainingConfig:
    """The `training` section of a caption config."""

    objective: str = "xe"  # xe: cross-entropy | scst: self-critical CIDEr-D
    init_from: str | None = None  # a caption model file to start from (its encoder, decoder, vocabulary); "shipped"
    # scheduled sampling (XE): p = min(max, increase · ⌊(epoch − start) / every⌋) from epoch `start`; start < 0: off
    scheduled_sampling_start: int = -1
    scheduled_sampling_every: int = 5
    scheduled_sampling_increase: float = 0.05
    scheduled_sampling_max: float = 0.25
    # self-critical (SCST)
    scst_baseline: str = "mean_others"  # mean_others (Luo 2020; better on coco-mini val) | greedy (Rennie et al. 2017)
    scst_samples: int = 5  # K sampled captions per image
    scst_max_len: int = 16
    # beam: the K best beam hypotheses (Cornia et al. 2020; better on coco-mini val) | sample: K samples (Rennie et al.)
    scst_candidates: str = "beam"
    scst_dropout: bool = False  # candidates made and scored with dropout off, as at test time, or on (self-critical.pytorch)
    scst_xe_weight: float = 0.0  # + this × the references' cross-entropy (a mixed objective, Paulus et al. 2017)
    # validation decoding (the checkpoint is chosen on beam-search CIDEr-D)
    val_beam_size: int = 3

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"training objective must be one of {OBJECTIVES.names()}, got {self.objective!r}")
        if self.scst_baseline not in BASELINES:
            raise ValueError(f"scst_baseline must be one of {BASELINES.names()}, got {self.scst_baseline!r}")
        if self.scst_candidates not in CANDIDATES:
            raise ValueError(f"scst_candidates must be one of {CANDIDATES.names()}, got {self.scst_candidates!r}")
        if self.objective == "scst" and not self.init_from:
            raise ValueError("self-critical training starts from a cross-entropy model: set training.init_from")
        if self.scst_samples < 1 or self.scst_max_len < 1 or self.val_beam_size < 1 or self.scheduled_sampling_every < 1:
            raise ValueError("scst_samples, scst_max_len, val_beam_size and scheduled_sampling_every must be positive")
        if self.scst_baseline == "mean_others" and self.scst_samples < 2:
            raise ValueError("the mean_others baseline needs scst_samples ≥ 2")
        if self.scst_xe_weight < 0:
            raise ValueError("scst_xe_weight must be 0 or more")
        if not 0 <= self.scheduled_sampling_max <= 1:
            raise ValueError("scheduled_sampling_max must be in [0, 1]")


def scheduled_sampling_prob(epoch: int, config: CaptionTrainingConfig) -> float:
    """Probability of feeding the model its own previous word at `epoch` (self-critical.pytorch's ramp)."""
    if config.scheduled_sampling_start < 0 or epoch < config.scheduled_sampling_start:
        return 0.0
    steps = (epoch - config.scheduled_sampling_start) // config.scheduled_sampling_every
    return min(config.scheduled_sampling_max, config.scheduled_sampling_increase * steps)


class CiderReward:
    """CIDEr-D of captions of training images, with df from the training references and each image's reference
    vectors computed once.

    As in self-critical.pytorch, `<end>` is a word of every reference and of every caption that produced it, so
    its n-grams are rewarded like any other: a sample that stops mid-phrase ("… on a <end>") or never ends scores
    below one that ends where the references end. Without it, SCST learns to cut captions short.
    """

    def __init__(self, references: Mapping[int, Sequence[str]]) -> None:
        tokenized = {i: [" ".join([*tokenize(r), END]) for r in refs] for i, refs in references.items()}
        self.scorer = CiderD(tokenized.values())
        self._references: dict[int, list[Vector]] = {i: self.scorer.references(refs) for i, refs in tokenized.items()}
        self._mirrored: dict[int, list[Vector]] = {}  # the mirrored photos' references ("left" ↔ "right")
        for i, refs in tokenized.items():
            mirrored = [mirror_caption(r) for r in refs]
            self._mirrored[i] = self._references[i] if mirrored == refs else self.scorer.references(mirrored)

    def __call__(self, image_ids: Sequence[int], captions: Sequence[str], mirrored: Sequence[bool] | None = None) -> torch.Tensor:
        """One reward per caption (from `reward_text`); captions[j] describes image_ids[j], mirrored left ↔ right where
        mirrored[j]. Returns (N,) float32."""
        sides = [False] * len(image_ids) if mirrored is None else [bool(m) for m in mirrored]
        references = [(self._mirrored if m else self._references)[int(i)] for i, m in zip(image_ids, sides)]
        return torch.tensor(self.scorer.scores(captions, references), dtype=torch.float32)


def reward_text(vocab: Vocabulary, words: Sequence[int], finished: bool) -> str:
    """A generated caption as the reward reads it: its words, then `<end>` when the decoder produced one."""
    return " ".join([*vocab.decode_tokens(words), *([END] if finished else [])])


# An objective: (module, batch, grid features (B, L, C)) → loss terms, "loss" included.
Objective = Callable[..., dict[str, torch.Tensor]]
OBJECTIVES: Registry[Objective] = Registry("training objective")


@OBJECTIVES.register("xe")
def cross_entropy_step(module, batch: dict, features: torch.Tensor) -> dict[str, torch.Tensor]:
    """Teacher forcing on every reference of every image; each image's grid is projected once for its captions.
    With data.train_boxes, the grounding loss (model.attention_supervision) joins in on words whose boxes are known."""
    captions, owners = module.reference_batch(batch["references"])
    output = module.decoder(features, captions, sample_prob=module.sample_prob, owners=owners)
    grounding, grounding_mask = module.grounding_batch(batch, captions.size(1) - 1)  # supervised attention, if boxes
    return caption_loss(module.decoder, output, captions, grounding=grounding, grounding_mask=grounding_mask)


@OBJECTIVES.register("scst")
def self_critical_step(module, batch: dict, features: torch.Tensor) -> dict[str, torch.Tensor]:
    """K candidates per image (samples or beam hypotheses), rewarded by CIDEr-D (<end> counts as a word), against the
    configured baseline. The references' teacher-forced pass joins in when asked: their cross-entropy weighted by
    training.scst_xe_weight, and with data.train_boxes the grounding loss of their maps (model.attention_supervision),
    as in cross-entropy training: generated words have no boxes."""
    config: CaptionTrainingConfig = module.training_config
    image_ids = batch["image_ids"].tolist()
    mirrored = batch["mirrored"].tolist() if "mirrored" in batch else [False] * len(image_ids)  # data.mirror
    samples = _candidates(module.decoder, features, config)
    texts = [reward_text(module.vocab, row, Vocabulary.end_id in row) for row in samples.tokens.tolist()]
    K = config.scst_samples
    per_sample_ids, per_sample_sides = [i for i in image_ids for _ in range(K)], [m for m in mirrored for _ in range(K)]
    rewards = check_rewards(module.reward(per_sample_ids, texts, per_sample_sides), module.global_step)
    rewards = rewards.view(len(image_ids), K)  # (B·K,) → (B, K)

    def greedy_rewards() -> torch.Tensor:
        greedy = generate(module.decoder, features, "greedy", max_len=config.scst_max_len)
        greedy_texts = [reward_text(module.vocab, t, f) for t, f in zip(greedy.tokens, greedy.finished)]
        return module.reward(image_ids, greedy_texts, mirrored)  # (B,)

    baseline = BASELINES.get(config.scst_baseline)(rewards, greedy_rewards)  # (B, K)
    advantage = (rewards - baseline).flatten().to(samples.log_probs.device)  # (B·K,)
    terms = {"loss": self_critical_loss(samples.log_probs, samples.mask, advantage), "reward": rewards.mean(),
             "baseline": baseline.mean(), "sample_length": samples.mask.sum(1).mean()}
    return _with_references(module, batch, features, terms)


def _with_references(module, batch: dict, features: torch.Tensor, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add the references' cross-entropy (× scst_xe_weight) and grounding loss (× λ) to SCST's terms, if asked."""
    xe_weight, cfg = module.training_config.scst_xe_weight, module.decoder.config
    grounded = "grounding" in batch and cfg.attention_supervision > 0
    if not (xe_weight > 0 or grounded):
        return terms
    reference = cross_entropy_step(module, batch, features)  # nll, penalty and (with boxes) grounding
    terms["loss"] = terms["loss"] + xe_weight * (reference["nll"] + cfg.alpha_c * reference["penalty"])
    if grounded:
        terms["loss"] = terms["loss"] + cfg.attention_supervision * reference["grounding"]
    return {**terms, **{k: v for k, v in reference.items() if k != "loss"}}


def _candidates(decoder: CaptionDecoder, features: torch.Tensor, config: CaptionTrainingConfig) -> Samples:
    """K candidates per image from the configured source, with the decoder's dropout on or off as configured (its
    mode is restored after)."""
    was_training = decoder.training
    decoder.train(was_training and config.scst_dropout)
    try:
        return CANDIDATES.get(config.scst_candidates)(decoder, features, config.scst_samples, config.scst_max_len)
    finally:
        decoder.train(was_training)


def check_rewards(rewards: torch.Tensor, step: int) -> torch.Tensor:
    """Stop (naming the step) on NaN/inf rewards or a batch where every sample scored zero: nothing to learn from."""
    if not torch.isfinite(rewards).all():
        raise CaptionerError(f"training stopped: non-finite CIDEr-D rewards at step {step}")
    if float(rewards.abs().sum()) == 0.0:
        raise CaptionerError(f"training stopped: every sampled caption scored CIDEr-D 0 at step {step} "
                             "(is training.init_from a trained model for this data?)")
    return rewards
