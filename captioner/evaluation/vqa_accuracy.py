"""The official VQA accuracy (vqaEval.py of the VQA API), reproduced rule for rule, and VQA result files.

Per question, `acc = mean over the 10 leave-one-out sets of 9 annotators of min(1, #matches / 3)`.
Answers are first lowercased, with newlines/tabs turned to spaces and surrounding spaces stripped; then, only when
the 10 ground-truth answers are not all identical, both the prediction and the ground-truth answers go through
`normalize_answer` (punctuation, number words → digits, articles dropped, contractions restored). When all 10 are
identical nothing is normalised, so the prediction must equal that answer verbatim (after lowercasing/stripping).
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from captioner.errors import CaptionerError
from captioner.evaluation.caption_metrics import write_json_atomic

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at",
    "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}  # fmt: skip
MANUAL_MAP = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = ("a", "an", "the")
PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
# Both regexes verbatim from vqaEval.py: "(?!<=\d)" is a lookahead that is always true before ".", so a period
# is dropped unless a digit follows ("3.5" keeps its period, "yes." loses it).
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
# vqaEval.py calls `periodStrip.sub("", text, re.UNICODE)`: the flag lands in `count`, so at most 32 periods go.
_PERIOD_COUNT = int(re.UNICODE)


@dataclass(frozen=True)
class VQAScores:
    """Accuracies in percent, as the official code reports them: overall and per answer/question type."""

    overall: float
    per_answer_type: dict[str, float]
    per_question_type: dict[str, float]
    n: int

    def summary(self) -> str:
        types = ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.per_answer_type.items()))
        return f"VQA accuracy {self.overall:.2f} ({types}; {self.n} questions)"

    def __str__(self) -> str:
        return self.summary()


def clean_answer(answer: str) -> str:
    """Lowercase, newlines/tabs to spaces, surrounding spaces stripped: applied to every answer first."""
    return str(answer).replace("\n", " ").replace("\t", " ").strip().lower()


def _process_punctuation(text: str) -> str:
    out = text
    for p in PUNCT:
        # The tests look at the *input* text, as vqaEval.py's processPunctuation does.
        if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=_PERIOD_COUNT)


def _process_digit_article(text: str) -> str:
    words = [MANUAL_MAP.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def normalize_answer(answer: str) -> str:
    """vqaEval.py's processPunctuation then processDigitArticle: 'Two dogs.' → '2 dogs', 'the cat' → 'cat'."""
    return _process_digit_article(_process_punctuation(clean_answer(answer)))


def soft_score(count: int) -> float:
    """Training target of an answer given by `count` of the 10 annotators: min(count / 3, 1)."""
    return min(count / 3.0, 1.0)


def question_accuracy(prediction: str, gt_answers: Sequence[str]) -> float:
    """Official accuracy of one prediction against its (usually 10) annotators' answers, in [0, 1]."""
    if not gt_answers:
        raise ValueError("a question needs at least one ground-truth answer")
    gts = [clean_answer(a) for a in gt_answers]
    pred = clean_answer(prediction)
    if len(set(gts)) > 1:
        gts = [normalize_answer(a) for a in gts]
        pred = normalize_answer(pred)
    matches = [g == pred for g in gts]
    total = sum(matches)
    # Leaving annotator i out removes one match exactly when annotator i matched.
    return sum(min(1.0, (total - m) / 3.0) for m in matches) / len(gts)


def _mean_percent(values: Iterable[float], digits: int | None) -> float:
    values = list(values)
    mean = 100.0 * sum(values) / len(values)
    return round(mean, digits) if digits is not None else mean


def _answers_of(annotation: dict) -> list[str]:
    try:
        return [a["answer"] for a in annotation["answers"]]
    except (KeyError, TypeError) as e:
        raise CaptionerError(f"VQA annotation {annotation.get('question_id')!r} has no valid 'answers' list") from e


def _check_coverage(predictions: dict[int, str], annotations: list[dict]) -> None:
    """The official loadRes refuses results that do not cover exactly the annotated questions."""
    wanted = {a["question_id"] for a in annotations}
    missing, extra = wanted - set(predictions), set(predictions) - wanted
    if missing:
        raise CaptionerError(f"no predicted answer for {len(missing)} annotated questions (e.g. {min(missing)})")
    if extra:
        raise CaptionerError(f"{len(extra)} predicted question ids are not in the annotations (e.g. {min(extra)})")


def vqa_accuracy(predictions: dict[int, str], annotations: list[dict], digits: int | None = 2) -> VQAScores:
    """Official VQA accuracy of `question_id → answer` against VQA v2-format annotations (percent, rounded)."""
    if not annotations:
        raise CaptionerError("no VQA annotations to evaluate against")
    _check_coverage(predictions, annotations)
    per_answer, per_question, overall = defaultdict(list), defaultdict(list), []
    for ann in annotations:
        acc = question_accuracy(predictions[ann["question_id"]], _answers_of(ann))
        overall.append(acc)
        per_answer[ann.get("answer_type", "unknown")].append(acc)
        per_question[ann.get("question_type", "unknown")].append(acc)
    return VQAScores(
        overall=_mean_percent(overall, digits),
        per_answer_type={k: _mean_percent(v, digits) for k, v in per_answer.items()},
        per_question_type={k: _mean_percent(v, digits) for k, v in per_question.items()},
        n=len(overall),
    )


def write_vqa_results(predictions: dict[int, str], path: str | Path) -> Path:
    """Write `[{"question_id", "answer"}]` (the VQA results format) atomically: temp file, then rename."""
    return write_json_atomic([{"question_id": int(q), "answer": str(a)} for q, a in predictions.items()], path)
