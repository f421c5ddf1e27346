"""Consensus captions (minimum Bayes risk decoding): of an image's beam hypotheses and a few sampled captions, the
one the others agree with most, by CIDEr-D with document frequencies from the training references.

Beam search returns the caption the model finds most probable; MBR returns the one with the highest expected
CIDEr-D against what the model might have said (Kumar & Byrne 2004; for captioning, e.g. Borgeaud & Emerson 2020).
Sampled captions stand in for that distribution (a duplicate sample counts twice, as it should), beam hypotheses
add strong candidates. Every image draws its samples from its own generator, seeded the same, so a photo gets the
same caption alone or in any batch.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from captioner.evaluation.cider import CiderD
from captioner.models.caption_decoder import CaptionDecoder
from captioner.models.decoding import beam_search, sample_decode
from captioner.text import Vocabulary


@dataclass(frozen=True)
class ConsensusConfig:
    """How many candidates to draw per image, and how."""

    beam_size: int = 5  # beam hypotheses (all that finished, up to this many)
    samples: int = 10  # sampled captions
    temperature: float = 0.5  # of the samples: below 1, near the model's mode yet varied
    seed: int = 0  # of every image's sample generator

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.samples < 0 or not self.temperature > 0:
            raise ValueError("consensus needs beam_size ≥ 1, samples ≥ 0 and temperature > 0")


@torch.no_grad()
def consensus_tokens(
    decoder: CaptionDecoder, features: torch.Tensor, vocab: Vocabulary, scorer: CiderD, max_len: int = 20,
    no_repeat_ngram_size: int = 0, config: ConsensusConfig = ConsensusConfig(), word_repeat_penalty: torch.Tensor | None = None,
) -> list[tuple[list[int], bool]]:
    """Features (B, L, C) → per image, the consensus caption's tokens (no <start>/<end>) and whether it ended."""
    chosen = []
    for pool in candidates(decoder, features, max_len, no_repeat_ngram_size, config, word_repeat_penalty):
        texts = [" ".join(vocab.decode_tokens(tokens)) for tokens, _ in pool]
        chosen.append(pool[consensus_choice(texts, scorer)])
    return chosen


@torch.no_grad()
def candidates(
    decoder: CaptionDecoder, features: torch.Tensor, max_len: int = 20, no_repeat_ngram_size: int = 0,
    config: ConsensusConfig = ConsensusConfig(), word_repeat_penalty: torch.Tensor | None = None,
) -> list[list[tuple[list[int], bool]]]:
    """Per image of features (B, L, C): its beam hypotheses, best first, then its samples, as (tokens, ended)."""
    options = {"max_len": max_len, "no_repeat_ngram_size": no_repeat_ngram_size, "word_repeat_penalty": word_repeat_penalty}
    found = beam_search(decoder, features, beam_size=config.beam_size, **options)
    return [[(tokens, finished) for tokens, _ in beams] + _samples(decoder, features[image], config, options)
            for image, (beams, finished) in enumerate(zip(found.beams, found.finished))]


def _samples(decoder: CaptionDecoder, grid: torch.Tensor, config: ConsensusConfig, options: dict) -> list[tuple[list[int], bool]]:
    """`config.samples` captions of one image's grid (L, C), from a generator of its own."""
    if config.samples == 0:
        return []
    generator = torch.Generator(device=grid.device).manual_seed(config.seed)
    rows = grid.unsqueeze(0).expand(config.samples, -1, -1)  # (S, L, C): one row per sample, no copy
    drawn = sample_decode(decoder, rows, temperature=config.temperature, generator=generator, **options)
    return list(zip(drawn.tokens, drawn.finished))


def consensus_choice(texts: Sequence[str], scorer: CiderD) -> int:
    """Index of the text with the highest summed CIDEr-D against all the other texts (the first, on ties)."""
    vectors = {text: scorer.vector(text) for text in set(texts)}
    agreement: dict[str, float] = {}
    for text in vectors:  # each distinct text once; the others count with their multiplicity
        agreement[text] = sum(scorer.similarity(vectors[text], vectors[other]) for other in texts) - scorer.similarity(
            vectors[text], vectors[text])
    return max(range(len(texts)), key=lambda i: (agreement[texts[i]], -i))
