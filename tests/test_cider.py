
import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider

from captioner.evaluation.cider import CiderD, corpus_cider
from captioner.text import tokenize

REFERENCES = {
    1: ["a man riding a wave on top of a surfboard", "a surfer rides a large wave", "a man surfing in the ocean"],
    2: ["two dogs playing with a frisbee in a park", "dogs run on the grass", "a dog catches a frisbee"],
    3: ["a plate of food with broccoli and rice", "a meal of chicken rice and broccoli on a plate"],
    4: ["a red bus parked on the side of a street", "a double decker bus on a city street"],
}
CANDIDATES = {1: "a man riding a wave on a surfboard", 2: "a dog playing with a frisbee",
              3: "a plate of food on a table", 4: "a red bus on a street street"}


def tokenized(text: str) -> str:
    return " ".join(tokenize(text))


def test_equals_pycocoevalcap_per_image_with_the_same_references_and_df():
    gts = {i: [tokenized(r) for r in refs] for i, refs in REFERENCES.items()}
    res = {i: [tokenized(c)] for i, c in CANDIDATES.items()}
    _, expected = Cider().compute_score(gts, res)
    scorer = CiderD(gts.values())  # df from the same references pycocoevalcap uses
    ours = [scorer.score(res[i][0], scorer.references(gts[i])) for i in gts]
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)
    assert corpus_cider({i: r[0] for i, r in res.items()}, gts) == pytest.approx(float(np.mean(expected)))


def test_document_frequencies_come_from_the_corpus_given_once():
    training = [[tokenized(r) for r in refs] for refs in REFERENCES.values()]
    scorer = CiderD(training)
    refs = scorer.references([tokenized("a man surfing in the ocean")])
    rare, common = scorer.score("man surfing ocean", refs), scorer.score("a in the", refs)
    assert rare > common  # words many training images use ("a", "the") count for little
    assert scorer.score("a man surfing in the ocean", refs) > rare  # an exact match scores highest


def test_repeating_words_does_not_pay():
    scorer = CiderD([[tokenized(r) for r in refs] for refs in REFERENCES.values()])
    refs = scorer.references([tokenized(r) for r in REFERENCES[4]])
    assert scorer.score("a red bus on a street", refs) > scorer.score("a red bus bus bus bus on a street", refs)
