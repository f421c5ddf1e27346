"""CIDEr-D in process (Vedantam et al. 2015), as pycocoevalcap computes it, with document frequencies fixed once.

pycocoevalcap recomputes document frequencies from the references of whatever it scores; self-critical training
needs them fixed from the *training* references and reused for every batch, with each image's reference
n-gram vectors computed once. `CiderD(corpus)` does that; `CiderD(corpus).score(candidate, refs)` equals
pycocoevalcap's per-image CIDEr-D when both see the same references and corpus (tests check it).

Captions are strings of space-separated tokens (run `captioner.text.tokenize` first).
"""

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Ngram = tuple[str, ...]


def ngram_counts(text: str, n: int = 4) -> Counter:
    """Counts of every 1..n-gram of a space-separated caption."""
    words = text.split()
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


@dataclass(frozen=True)
class Vector:
    """tf-idf weights of one caption, split by n-gram order, with their norms and the caption's length."""

    weights: tuple[dict[Ngram, float], ...]  # one dict per order 1..n
    norms: tuple[float, ...]
    length: int  # pycocoevalcap counts the bigrams (words − 1) as the length


class CiderD:
    """CIDEr-D (n ≤ 4, σ = 6, clipped, length-penalised, × 10) against a fixed document-frequency corpus."""

    def __init__(self, corpus: Iterable[Sequence[str]], n: int = 4, sigma: float = 6.0) -> None:
        """`corpus`: for each image, its reference captions; an n-gram's df counts the images that use it."""
        self.n, self.sigma = n, sigma
        self.df: Counter = Counter()
        images = 0
        for refs in corpus:
            images += 1
            self.df.update({gram for ref in refs for gram in ngram_counts(ref, n)})
        if images == 0:
            raise ValueError("CIDEr-D needs a reference corpus of at least one image")
        self.log_images = math.log(float(images))

    def vector(self, text: str) -> Vector:
        weights: list[dict[Ngram, float]] = [{} for _ in range(self.n)]
        length = 0
        for gram, tf in ngram_counts(text, self.n).items():
            order = len(gram) - 1
            weights[order][gram] = tf * (self.log_images - math.log(max(1.0, self.df[gram])))
            if order == 1:
                length += tf
        norms = tuple(math.sqrt(sum(w * w for w in order.values())) for order in weights)
        return Vector(tuple(weights), norms, length)

    def references(self, refs: Sequence[str]) -> list[Vector]:
        """Vectors of one image's references: compute once, score many candidates against them."""
        return [self.vector(ref) for ref in refs]

    def score(self, candidate: str, refs: Sequence[Vector]) -> float:
        """CIDEr-D of one candidate against one image's reference vectors."""
        hyp = self.vector(candidate)
        return sum(self.similarity(hyp, ref) for ref in refs) / len(refs)

    def similarity(self, hyp: Vector, ref: Vector) -> float:
        """CIDEr-D of a candidate's vector against a single reference's: clipped, length-penalised, × 10."""
        penalty = math.exp(-((hyp.length - ref.length) ** 2) / (2 * self.sigma**2))
        total = 0.0
        for h, r, nh, nr in zip(hyp.weights, ref.weights, hyp.norms, ref.norms):
            dot = sum(min(w, r.get(g, 0.0)) * r.get(g, 0.0) for g, w in h.items())
            total += (dot / (nh * nr) if nh and nr else dot) * penalty
        return total / self.n * 10.0

    def to_table(self) -> dict:
        """The document frequencies as plain data (for a model file). N-grams used by one image only are left out:
        their weight is that of an unseen n-gram (df is read as max(1, df)), so the table scores identically."""
        kept = {" ".join(gram): df for gram, df in self.df.items() if df > 1}
        return {"images": round(math.exp(self.log_images)), "ngrams": list(kept), "counts": list(kept.values()),
                "n": self.n, "sigma": self.sigma}

    @classmethod
    def from_table(cls, table: Mapping) -> "CiderD":
        """The scorer `to_table` describes."""
        scorer = cls.__new__(cls)
        scorer.n, scorer.sigma = int(table["n"]), float(table["sigma"])
        scorer.df = Counter({tuple(gram.split()): int(df) for gram, df in zip(table["ngrams"], table["counts"])})
        scorer.log_images = math.log(float(table["images"]))
        return scorer

    def scores(self, candidates: Sequence[str], refs: Sequence[Sequence[Vector]]) -> np.ndarray:
        """One score per candidate, each against its own image's reference vectors."""
        return np.array([self.score(c, r) for c, r in zip(candidates, refs)], dtype=np.float64)


def corpus_cider(results: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]) -> float:
    """Mean CIDEr-D of one caption per image with df from the evaluated images' references (pycocoevalcap's way)."""
    keys = list(results)
    scorer = CiderD(references[k] for k in keys)
    return float(np.mean([scorer.score(results[k], scorer.references(references[k])) for k in keys]))
