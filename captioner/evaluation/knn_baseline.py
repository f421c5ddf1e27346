"""Nearest-neighbour caption retrieval (Devlin et al. 2015): the yardstick a trained captioner must beat.

Each query image takes the captions of its k most similar training images (cosine similarity of the same
encoder's pooled features) and returns the *consensus* caption: the candidate that agrees most, in n-gram
overlap, with the other candidates.
"""

from collections import Counter
from collections.abc import Sequence

import numpy as np

from captioner.text import tokenize


def nearest_neighbours(queries: np.ndarray, database: np.ndarray, k: int) -> np.ndarray:
    """Cosine k-NN: queries (Q, C), database (N, C) → indices (Q, k), most similar first."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True).clip(min=1e-8)
    d = database / np.linalg.norm(database, axis=1, keepdims=True).clip(min=1e-8)
    similarity = q @ d.T  # (Q, N)
    top = np.argpartition(-similarity, kth=min(k, similarity.shape[1] - 1), axis=1)[:, :k]  # (Q, k), unordered
    order = np.take_along_axis(-similarity, top, axis=1).argsort(axis=1)
    return np.take_along_axis(top, order, axis=1)


def _overlap(a: list[str], b: list[str], max_n: int = 4) -> float:
    """Mean over n = 1..4 of the n-gram F1 between two token lists."""
    total = 0.0
    for n in range(1, max_n + 1):
        ca, cb = (Counter(zip(*(x[i:] for i in range(n)))) for x in (a, b))  # n-grams of order n
        size = sum(ca.values()) + sum(cb.values())
        total += 2 * sum((ca & cb).values()) / size if size else 0.0
    return total / max_n


def consensus_caption(candidates: Sequence[str]) -> str:
    """The candidate with the highest mean n-gram agreement with the other candidates."""
    tokens = [tokenize(c) for c in candidates]
    scores = [np.mean([_overlap(t, u) for j, u in enumerate(tokens) if j != i] or [0.0]) for i, t in enumerate(tokens)]
    return candidates[int(np.argmax(scores))]


def knn_captions(
    query_features: np.ndarray, train_features: np.ndarray, train_captions: Sequence[Sequence[str]], k: int = 10
) -> list[str]:
    """Pooled features of query images (Q, C) and training images (N, C) with their captions → one caption per query."""
    neighbours = nearest_neighbours(query_features, train_features, k)
    return [consensus_caption([c for j in row for c in train_captions[j]]) for row in neighbours]
