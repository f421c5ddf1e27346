import json
import logging
import math
from collections import defaultdict

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from captioner.errors import CaptionerError
from captioner.evaluation import caption_metrics
from captioner.evaluation.bleu import corpus_bleu
from captioner.evaluation.caption_metrics import (
    JAVA_MISSING,
    evaluate_captions,
    java_available,
    ptb_tokenize,
    write_coco_results,
    write_scores,
)

needs_java = pytest.mark.skipif(not java_available(), reason="Java is not installed")

CORPUS = {  # image id → (hypothesis, references)
    1: ("a man riding a horse on a beach", ["a man rides a horse along the beach", "a person on a horse by the sea"]),
    2: ("two dogs play in the grass", ["two dogs playing in a grassy field", "a pair of dogs run on the grass"]),
    3: ("a plate of food", ["a plate topped with meat and vegetables", "a white plate with food on it"]),
    4: ("a red bus", ["a red double decker bus on a city street", "a bus driving down the road", "red bus"]),
    5: ("a cat sitting on a laptop keyboard", ["a cat lying on a laptop", "a cat sits on a keyboard"]),
}


def words(text: str) -> list[str]:
    return text.split()


def test_bleu_hand_worked_example():
    hyp = words("a cat sat on the mat")
    refs = [words("the cat sat on the mat"), words("a dog sat on a mat")]
    # unigrams 6/6 · bigrams 4/5 ("a cat" unmatched) · trigrams 3/4 · 4-grams 2/3; both refs have 6 words: BP = 1.
    bleu = corpus_bleu([hyp], [refs])
    expected = [1.0, (4 / 5) ** (1 / 2), (4 / 5 * 3 / 4) ** (1 / 3), (4 / 5 * 3 / 4 * 2 / 3) ** (1 / 4)]
    assert bleu == pytest.approx(expected, abs=1e-8)


def test_bleu_brevity_penalty_uses_closest_reference_and_coco_constants():
    # "the cat" (2 words) against refs of 6 and 3 words: the closest is 3, so BP = exp(1 - 3/2).
    bleu = corpus_bleu([words("the cat")], [[words("the cat sat on the mat"), words("the cat sat")]])
    bp = math.exp(1 - 3 / 2)
    assert bleu[:2] == pytest.approx([bp, bp])
    # No trigram at all: COCO's ratio (0 + 1e-15) / (0 + 1e-9) = 1e-6, not an error and not nltk's smoothing.
    assert bleu[2] == pytest.approx(bp * (1e-6) ** (1 / 3))
    # A tie in distance (4 words vs refs of 3 and 5) goes to the shorter reference: no penalty.
    assert corpus_bleu([words("a b c d")], [[words("a b c"), words("a b c d e")]])[0] == pytest.approx(1.0)


def test_bleu_matches_pycocoevalcap():
    gts = {i: refs for i, (_, refs) in CORPUS.items()}
    res = {i: [hyp] for i, (hyp, _) in CORPUS.items()}
    coco, _ = Bleu(4).compute_score(gts, res, verbose=0)
    hypotheses = [words(hyp) for hyp, _ in CORPUS.values()]
    ours = corpus_bleu(hypotheses, [[words(r) for r in refs] for _, refs in CORPUS.values()])
    assert ours == pytest.approx(coco, abs=1e-12)


def test_bleu_refuses_a_hypothesis_without_references():
    with pytest.raises(ValueError):
        corpus_bleu([["a"]], [[]])
    assert corpus_bleu([], []) == [0.0, 0.0, 0.0, 0.0]


def test_perfect_and_wrong_captions_without_java():
    references = {i: refs for i, (_, refs) in CORPUS.items()}
    perfect = evaluate_captions({i: refs[0] for i, refs in references.items()}, references, use_java=False)
    wrong = evaluate_captions({i: "an airplane in the sky" for i in references}, references, use_java=False)
    assert not perfect.java_used and "METEOR" not in perfect.scores
    assert list(perfect.scores) == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"]
    assert perfect["BLEU-4"] == pytest.approx(1.0) and perfect["ROUGE-L"] == pytest.approx(1.0)
    assert all(wrong[m] < perfect[m] for m in perfect.scores)
    assert "CIDEr-D" in perfect.summary() and "5 images" in str(perfect)


def test_missing_java_is_reported_in_one_line(monkeypatch, caplog):
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: None)
    references = {i: refs for i, (_, refs) in CORPUS.items()}
    with caplog.at_level(logging.WARNING):
        scores = evaluate_captions({i: hyp for i, (hyp, _) in CORPUS.items()}, references)
    assert [r.getMessage() for r in caplog.records if r.name == caption_metrics.__name__] == [JAVA_MISSING]
    assert not scores.java_used and set(scores.scores) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"}


def test_metric_subset_and_bad_input():
    references = {1: ["a dog on a couch"], 2: ["a bowl of soup"]}
    scores = evaluate_captions({1: "a dog", 2: "soup"}, references, metrics=["CIDEr-D", "BLEU-4"], use_java=False)
    assert list(scores.scores) == ["BLEU-4", "CIDEr-D"]
    with pytest.raises(CaptionerError, match="unknown caption metric 'SPICE'"):
        evaluate_captions({1: "a dog"}, references, metrics=["SPICE"], use_java=False)
    with pytest.raises(CaptionerError, match="no reference captions"):
        evaluate_captions({3: "a cat"}, references, use_java=False)


@needs_java
def test_ptb_tokenizer_matches_pycocoevalcap():
    captions = {1: ["A man, riding a Horse.", "", "It's a t-shirt (red)!"], 2: ["...", "Two dogs -- play; in a park?"]}
    theirs = PTBTokenizer().tokenize({k: [{"caption": c} for c in caps] for k, caps in captions.items()})
    assert ptb_tokenize(captions) == theirs


def coco_tokenized(results: dict[int, str], references: dict[int, list[str]]) -> tuple[dict, dict]:
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": r} for r in refs] for i, refs in references.items()})
    return gts, tokenizer.tokenize({i: [{"caption": c}] for i, c in results.items()})


@needs_java
def test_full_suite_with_java_matches_pycocoevalcap():
    references = {i: refs for i, (_, refs) in CORPUS.items()}
    results = {i: hyp.capitalize() + "." for i, (hyp, _) in CORPUS.items()}
    scores = evaluate_captions(results, references)
    assert scores.java_used and list(scores.scores) == list(caption_metrics.METRICS)
    gts, res = coco_tokenized(results, references)
    expected = dict(zip(["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"], Bleu(4).compute_score(gts, res, verbose=0)[0]))
    expected |= {"ROUGE-L": Rouge().compute_score(gts, res)[0], "CIDEr-D": Cider().compute_score(gts, res)[0]}
    assert {k: scores[k] for k in expected} == pytest.approx(expected, abs=1e-9)
    assert 0.1 < scores["METEOR"] < 0.6


@needs_java
@pytest.mark.slow
def test_meteor_matches_pycocoevalcap():
    references = {i: refs for i, (_, refs) in CORPUS.items()}
    results = {i: hyp for i, (hyp, _) in CORPUS.items()}
    expected = Meteor().compute_score(*coco_tokenized(results, references))[0]
    assert evaluate_captions(results, references, metrics=["METEOR"])["METEOR"] == pytest.approx(expected, abs=1e-9)


def test_result_and_score_files_are_written_whole(tmp_path):
    path = write_coco_results({42: "a dog", 7: "a cat"}, tmp_path / "out" / "captions.json")
    assert json.loads(path.read_text()) == [{"image_id": 42, "caption": "a dog"}, {"image_id": 7, "caption": "a cat"}]
    scores = evaluate_captions({1: "a dog"}, {1: ["a dog on a couch"]}, use_java=False)
    saved = json.loads(write_scores(scores, tmp_path / "out" / "scores.json").read_text())
    assert saved == {"scores": scores.scores, "statistics": {"mean_length": 2.0, "repeated_trigram_share": 0.0, "repeated_content_word_share": 0.0}, "java_used": False, "n_images": 1}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["captions.json", "scores.json"]  # no temp files


def test_human_captions_on_coco_mini(coco_mini):
    """Caption #0 of each val image against the others: the 'human' reference point (CIDEr-D ≈ 0.9)."""
    data = json.loads((coco_mini / "captions_val.json").read_text())
    captions = defaultdict(list)
    for ann in sorted(data["annotations"], key=lambda a: a["id"]):
        captions[ann["image_id"]].append(ann["caption"])
    results = {i: caps[0] for i, caps in captions.items()}
    scores = evaluate_captions(results, {i: caps[1:] for i, caps in captions.items()}, use_java=False)
    assert scores.n_images == 317
    assert 0.15 < scores["BLEU-4"] < 0.35 and 0.6 < scores["CIDEr-D"] < 1.3


def test_statistics_count_length_and_repeated_trigrams():
    from captioner.evaluation.caption_metrics import caption_statistics

    stats = caption_statistics(["a plane flying in the sky in the sky", "a man riding a horse", "a dog"])
    assert stats["mean_length"] == pytest.approx((9 + 5 + 2) / 3)
    assert stats["repeated_trigram_share"] == pytest.approx(1 / 3)  # "in the sky" twice; "a dog" is too short to repeat
    assert stats["repeated_content_word_share"] == pytest.approx(1 / 3)  # "sky" twice; "a" and "the" are function words
