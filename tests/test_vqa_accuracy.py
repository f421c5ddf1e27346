import json

import pytest

from captioner.errors import CaptionerError
from captioner.evaluation.vqa_accuracy import (
    normalize_answer,
    question_accuracy,
    soft_score,
    vqa_accuracy,
    write_vqa_results,
)


def answers(*counts: tuple[str, int]) -> list[str]:
    """answers(("yes", 3), ("no", 7)) → 10 annotators' answers."""
    return [a for a, n in counts for _ in range(n)]


def test_ten_identical_answers():
    assert question_accuracy("yes", answers(("yes", 10))) == 1.0
    assert question_accuracy("no", answers(("yes", 10))) == 0.0


@pytest.mark.parametrize(
    "matches, expected",
    [
        # Leave-one-out over 10 annotators, acc_i = min(1, matches among the other 9 / 3):
        # 1 match: leaving the match out gives 0/3 (once), leaving another out 1/3 (9 times): 9·(1/3)/10 = 0.3
        (1, 0.3),
        # 2 matches: 2 × (1/3) + 8 × (2/3) = 6, /10 = 0.6
        (2, 0.6),
        # 3 matches: 3 × (2/3) + 7 × 1 = 9, /10 = 0.9 — three annotators are not quite full marks
        (3, 0.9),
        # 4 matches: any 9 of the 10 still hold ≥ 3 matches: 1.0
        (4, 1.0),
        (0, 0.0),
    ],
)
def test_leave_one_out_accuracy(matches, expected):
    gt = answers(("red", matches), ("blue", 10 - matches))
    assert question_accuracy("red", gt) == pytest.approx(expected)


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("Two", "2"),
        ("none", "0"),
        ("the cat", "cat"),
        ("a", ""),
        ("an apple", "apple"),
        ("dont", "don't"),
        ("yes.", "yes"),
        ("yes?", "yes"),
        ("yes!!", "yes"),
        ("3.5", "3.5"),  # a period before a digit stays
        ("1,000", "1000"),  # digit,digit: every punctuation mark is deleted, not turned into a space
        ("red, white", "red white"),  # ", " deletes the comma
        ("red,white", "red white"),  # a lone comma becomes a space
        ("black/white", "black white"),
        ("  Hello\tWorld\n", "hello world"),
    ],
)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_normalisation_applies_to_prediction_and_answers_when_annotators_disagree():
    gt = answers(("2", 4), ("two", 3), ("3", 3))  # "two" → "2": 7 of 10 say 2
    assert question_accuracy("Two.", gt) == 1.0
    assert question_accuracy("the cat", answers(("cat", 3), ("a cat", 2), ("dog", 5))) == 1.0
    assert question_accuracy("dont know", answers(("don't know", 1), ("yes", 9))) == pytest.approx(0.3)


def test_no_normalisation_when_all_ten_answers_are_identical():
    # vqaEval.py runs processPunctuation/processDigitArticle on the prediction and the answers only inside
    # `if len(set(gtAnswers)) > 1`. With ten identical "2." neither side is normalised, so "2" != "2." scores 0,
    # although "2." would normalise to "2". Lowercasing and stripping still apply ("YES " matches "yes").
    assert question_accuracy("2", answers(("2.", 10))) == 0.0
    assert question_accuracy("2.", answers(("2.", 10))) == 1.0
    assert question_accuracy("two", answers(("2", 10))) == 0.0
    assert question_accuracy(" YES ", answers(("yes", 10))) == 1.0
    # One dissenting annotator switches normalisation on: "2" now matches the nine "2." (→ "2").
    assert question_accuracy("2", answers(("2.", 9), ("3", 1))) == 1.0


def test_soft_score():
    assert [soft_score(n) for n in range(5)] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0, 1.0])


def annotation(question_id: int, question_type: str, answer_type: str, gt: list[str]) -> dict:
    return {
        "question_id": question_id,
        "question_type": question_type,
        "answer_type": answer_type,
        "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(gt)],
    }


def test_vqa_accuracy_overall_and_per_type():
    annotations = [
        annotation(1, "is the", "yes/no", answers(("yes", 10))),
        annotation(2, "is the", "yes/no", answers(("no", 8), ("yes", 2))),
        annotation(3, "how many", "number", answers(("2", 1), ("3", 9))),
        annotation(4, "what color", "other", answers(("red", 10))),
    ]
    predictions = {1: "yes", 2: "yes", 3: "two", 4: "blue"}  # accuracies 1.0, 0.6, 0.3, 0.0
    scores = vqa_accuracy(predictions, annotations)
    assert scores.overall == pytest.approx(47.5)
    assert scores.per_answer_type == pytest.approx({"yes/no": 80.0, "number": 30.0, "other": 0.0})
    assert scores.per_question_type == pytest.approx({"is the": 80.0, "how many": 30.0, "what color": 0.0})
    assert scores.n == 4 and "47.50" in scores.summary()


def test_official_rounding_to_two_decimals():
    annotations = [annotation(1, "what", "other", answers(("a", 10))), annotation(2, "what", "other", ["x"] * 10)]
    annotations.append(annotation(3, "what", "other", answers(("b", 1), ("c", 9))))
    predictions = {1: "a", 2: "y", 3: "b"}  # (1 + 0 + 0.3) / 3 = 43.333…%
    assert vqa_accuracy(predictions, annotations).overall == 43.33
    assert vqa_accuracy(predictions, annotations, digits=None).overall == pytest.approx(130 / 3)


def test_results_must_cover_the_annotated_questions():
    annotations = [annotation(1, "is the", "yes/no", answers(("yes", 10)))]
    with pytest.raises(CaptionerError, match="no predicted answer"):
        vqa_accuracy({}, annotations)
    with pytest.raises(CaptionerError, match="not in the annotations"):
        vqa_accuracy({1: "yes", 2: "no"}, annotations)


def test_write_vqa_results(tmp_path):
    path = write_vqa_results({5: "yes", 9: "2"}, tmp_path / "results.json")
    assert json.loads(path.read_text()) == [{"question_id": 5, "answer": "yes"}, {"question_id": 9, "answer": "2"}]
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
