"""The standard COCO caption suite (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D) through pycocoevalcap, with or without Java.

With Java, captions are tokenized by pycocoevalcap's Stanford PTBTokenizer (same jar, flags and punctuation
filter), so the numbers are comparable with published ones. Without Java, METEOR is skipped and captions are
tokenized by `captioner.text.tokenize`; BLEU, ROUGE-L and CIDEr-D are still reported. SPICE is never run (it
downloads Stanford CoreNLP at run time).
"""

import contextlib
import io
import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer import ptbtokenizer

from captioner.errors import CaptionerError
from captioner.files import write_atomic
from captioner.text import tokenize
from captioner.text.function_words import is_content_word

log = logging.getLogger(__name__)

JAVA_MISSING = "Java not found: METEOR skipped and captions tokenized in Python"


@dataclass(frozen=True)
class _ScorerSpec:
    names: tuple[str, ...]  # the metrics one run of the scorer yields, in its output order
    compute: Callable[[dict, dict], list[float]]  # (gts, res) of tokenized strings → one score per name
    needs_java: bool = False


def _bleu(gts: dict, res: dict) -> list[float]:
    return list(Bleu(4).compute_score(gts, res, verbose=0)[0])


def _meteor(gts: dict, res: dict) -> list[float]:
    scorer = Meteor()
    try:
        return [float(scorer.compute_score(gts, res)[0])]
    finally:  # stop the JVM now rather than whenever the garbage collector runs __del__
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()


def _rouge(gts: dict, res: dict) -> list[float]:
    return [float(Rouge().compute_score(gts, res)[0])]


def _cider(gts: dict, res: dict) -> list[float]:
    return [float(Cider().compute_score(gts, res)[0])]  # pycocoevalcap's Cider is CIDEr-D (clipping, length penalty)


SCORERS = (
    _ScorerSpec(("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"), _bleu),
    _ScorerSpec(("METEOR",), _meteor, needs_java=True),
    _ScorerSpec(("ROUGE-L",), _rouge),
    _ScorerSpec(("CIDEr-D",), _cider),
)
METRICS = tuple(name for spec in SCORERS for name in spec.names)
JAVA_METRICS = frozenset(name for spec in SCORERS if spec.needs_java for name in spec.names)


@dataclass(frozen=True)
class CaptionScores:
    """Corpus scores (pycocoevalcap scale: BLEU/METEOR/ROUGE-L in [0, 1], CIDEr-D in [0, 10]) and caption statistics."""

    scores: dict[str, float]
    java_used: bool
    n_images: int
    statistics: dict[str, float] = field(default_factory=dict)  # mean length, share repeating a word trigram

    def summary(self) -> str:
        values = "  ".join(f"{name} {value:.3f}" for name, value in self.scores.items())
        how = "PTB tokenizer" if self.java_used else "Python tokenizer, no METEOR"
        stats = "".join(f", {name} {value:.3g}" for name, value in self.statistics.items())
        return f"{values}  ({self.n_images} images, {how}{stats})"

    def __str__(self) -> str:
        return self.summary()

    def __getitem__(self, name: str) -> float:
        return self.scores[name]


def java_available() -> bool:
    """True when a `java` executable is on PATH and `java -version` runs."""
    java = shutil.which("java")
    if java is None:
        return False
    try:
        return subprocess.run([java, "-version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def ptb_tokenize(captions: dict[Hashable, list[str]]) -> dict[Hashable, list[str]]:
    """pycocoevalcap's PTBTokenizer (same jar, flags, punctuation filter), run without writing into site-packages."""
    jar = Path(ptbtokenizer.__file__).with_name(ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
    owners = [key for key, caps in captions.items() for _ in caps]
    text = "\n".join(c.replace("\r", " ").replace("\n", " ") for caps in captions.values() for c in caps)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "captions.txt"
        source.write_bytes(text.encode())
        cmd = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
        try:
            done = subprocess.run([*cmd, str(source)], capture_output=True, check=False)
        except OSError as e:
            raise CaptionerError(f"cannot run the PTB tokenizer (java): {e}") from e
    lines = done.stdout.decode().split("\n")
    if done.returncode != 0 or len(lines) < len(owners):
        raise CaptionerError(f"the PTB tokenizer (java) failed: {done.stderr.decode().strip()[-300:]}")
    tokenized: dict[Hashable, list[str]] = {key: [] for key in captions}
    for key, line in zip(owners, lines):
        words = [w for w in line.rstrip().split(" ") if w not in ptbtokenizer.PUNCTUATIONS]
        tokenized[key].append(" ".join(words))
    return tokenized


def python_tokenize(captions: dict[Hashable, list[str]]) -> dict[Hashable, list[str]]:
    """The Java-free fallback: `captioner.text.tokenize`, words joined by spaces."""
    return {key: [" ".join(tokenize(c)) for c in caps] for key, caps in captions.items()}


def _select(metrics: Sequence[str] | None, java: bool) -> tuple[list[_ScorerSpec], list[str]]:
    """The scorers to run and the metric names to report, in METRICS order."""
    wanted = list(METRICS) if metrics is None else list(metrics)
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise CaptionerError(f"unknown caption metric {unknown[0]!r}; known: {', '.join(METRICS)}")
    if not java:
        wanted = [m for m in wanted if m not in JAVA_METRICS]
    specs = [s for s in SCORERS if set(s.names) & set(wanted)]
    return specs, [m for m in METRICS if m in wanted]


def _inputs(results: dict[int, str], references: dict[int, list[str]]) -> tuple[dict, dict]:
    if not results:
        raise CaptionerError("no captions to evaluate")
    missing = [i for i in results if not references.get(i)]
    if missing:
        raise CaptionerError(f"{len(missing)} captioned images have no reference captions (e.g. image {missing[0]})")
    return {i: [str(results[i])] for i in results}, {i: [str(r) for r in references[i]] for i in results}


def _tokenize_both(tokenizer: Callable, gts: dict, res: dict) -> tuple[dict, dict]:
    """References and results through one tokenizer call (one JVM start instead of two)."""
    merged = tokenizer({**{("gts", i): v for i, v in gts.items()}, **{("res", i): v for i, v in res.items()}})
    return {i: merged[("gts", i)] for i in gts}, {i: merged[("res", i)] for i in res}


def evaluate_captions(
    results: dict[int, str],
    references: dict[int, list[str]],
    metrics: Sequence[str] | None = None,
    *,
    use_java: bool | None = None,
) -> CaptionScores:
    """Score one caption per image (`image_id → caption`) against its references; images without a caption are
    left out. `use_java=None` uses Java (PTB tokenizer, METEOR) when it is installed."""
    res, gts = _inputs(results, references)
    java = java_available() if use_java is None else use_java
    if use_java is None and not java:
        log.warning(JAVA_MISSING)
    specs, names = _select(metrics, java)
    gts, res = _tokenize_both(ptb_tokenize if java else python_tokenize, gts, res)
    scores: dict[str, float] = {}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocoevalcap prints progress and totals
        for spec in specs:
            scores.update(zip(spec.names, spec.compute(gts, res)))
    return CaptionScores({name: float(scores[name]) for name in names}, java_used=java, n_images=len(res),
                         statistics=caption_statistics(results.values()))


def caption_statistics(captions: Iterable[str]) -> dict[str, float]:
    """Mean caption length in words, the share of captions that repeat a word trigram ("in the sky in the sky")
    and the share that repeat a content word ("a bus parked on the side of a bus"; text/function_words.py)."""
    tokenized = [tokenize(c) for c in captions]
    if not tokenized:
        return {}
    repeats = [len(set(zip(w, w[1:], w[2:]))) < max(len(w) - 2, 0) for w in tokenized]
    content = [[word for word in w if is_content_word(word)] for w in tokenized]
    repeated_content = [len(set(words)) < len(words) for words in content]
    return {"mean_length": sum(map(len, tokenized)) / len(tokenized), "repeated_trigram_share": sum(repeats) / len(repeats),
            "repeated_content_word_share": sum(repeated_content) / len(repeated_content)}


def write_json_atomic(payload: object, path: str | Path) -> Path:
    """json.dump to a temporary file beside `path`, then rename, so readers never see half a file."""
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8"))


def write_coco_results(results: dict[int, str], path: str | Path) -> Path:
    """Write `[{"image_id", "caption"}]` (the COCO results format) atomically."""
    return write_json_atomic([{"image_id": int(i), "caption": str(c)} for i, c in results.items()], path)


def write_scores(scores: CaptionScores, path: str | Path, grounding: dict | None = None) -> Path:
    """Write the scores, caption statistics, whether Java was used and the image count (and the grounding metric)
    as JSON, atomically."""
    payload = {"scores": scores.scores, "statistics": scores.statistics, "java_used": scores.java_used, "n_images": scores.n_images}
    if grounding is not None:
        payload["grounding"] = grounding
    return write_json_atomic(payload, path)
