"""Fast corpus BLEU-1..4 on token lists, numerically the same as pycocoevalcap's `Bleu` scorer.

COCO's BLEU (the Chiang/Fang/Lin `bleu_scorer.py`) differs from nltk's in three details, all reproduced here:
- clipped n-gram counts are summed over the corpus before the precisions are taken (no smoothing), but every
  ratio is `(correct + 1e-15) / (guess + 1e-9)` so a zero count gives ~0 instead of a division error;
- the brevity penalty is corpus-level, with each hypothesis' reference length the *closest* reference length
  (ties go to the shorter reference), and the ratio is `(testlen + 1e-15) / (reflen + 1e-9)`;
- BLEU-n is the geometric mean of precisions 1..n (cumulative), times the brevity penalty when the ratio < 1.
"""

import math
from collections import Counter
from collections.abc import Sequence

_TINY = 1e-15  # added to the numerators, as in bleu_scorer.py
_SMALL = 1e-9  # added to the denominators


def ngram_counts(tokens: Sequence[str], max_n: int) -> Counter:
    """Counts of every n-gram (as a tuple) of order 1..max_n."""
    counts: Counter = Counter()
    for n in range(1, max_n + 1):
        counts.update(zip(*(tokens[i:] for i in range(n))))
    return counts


def _closest_length(hyp_len: int, ref_lens: Sequence[int]) -> int:
    return min((abs(length - hyp_len), length) for length in ref_lens)[1]


def _sentence_stats(hyp: Sequence[str], refs: Sequence[Sequence[str]], max_n: int) -> tuple[int, list[int], list[int]]:
    """(closest reference length, clipped matches per order, hypothesis n-grams per order) for one hypothesis."""
    max_ref: dict[tuple, int] = {}
    for ref in refs:
        for gram, count in ngram_counts(ref, max_n).items():
            if count > max_ref.get(gram, 0):
                max_ref[gram] = count
    correct = [0] * max_n
    for gram, count in ngram_counts(hyp, max_n).items():
        correct[len(gram) - 1] += min(count, max_ref.get(gram, 0))
    guess = [max(0, len(hyp) - k + 1) for k in range(1, max_n + 1)]
    return _closest_length(len(hyp), [len(r) for r in refs]), correct, guess


def corpus_bleu(
    hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]], max_n: int = 4
) -> list[float]:
    """Cumulative corpus BLEU-1..max_n of tokenized hypotheses, each against its list of tokenized references."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    if not hypotheses:
        return [0.0] * max_n
    test_len = ref_len = 0
    correct, guess = [0] * max_n, [0] * max_n
    for i, (hyp, refs) in enumerate(zip(hypotheses, references)):
        if not refs:
            raise ValueError(f"hypothesis {i} has no references")
        r_len, c, g = _sentence_stats(list(hyp), [list(r) for r in refs], max_n)
        test_len, ref_len = test_len + len(hyp), ref_len + r_len
        correct = [a + b for a, b in zip(correct, c)]
        guess = [a + b for a, b in zip(guess, g)]
    return _combine(test_len, ref_len, correct, guess)


def _combine(test_len: int, ref_len: int, correct: list[int], guess: list[int]) -> list[float]:
    """Geometric means of the precisions, with the brevity penalty, in bleu_scorer.py's order of operations."""
    scores, product = [], 1.0
    for k, (c, g) in enumerate(zip(correct, guess)):
        product *= float(c + _TINY) / (g + _SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (test_len + _TINY) / (ref_len + _SMALL)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores
