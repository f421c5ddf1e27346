"""COCO-QA-style questions from COCO captions and person boxes, written as VQA v2 files. No Lightning here.

Ren et al. 2015 built COCO-QA by turning captions into questions. Here a question is asked only when the data
supports its answer with agreement (the rules are documented in docs/VQA.md):

- `how many people`: from the person boxes of labelled photos; two readings, every box and the prominent people
  (boxes covering at least 0.5 % of the photo), five answers each, capped at "5 or more";
- `what color`, `what is holding`, `what is riding`, `what sport`, `what animal`, `what food`, `what room`: a value
  stated by at least two of the photo's captions and by more captions than any other value;
- `is there`: an object named by at least two captions ("yes"), and the same question about another photo of the
  split whose captions never name it ("no"), so every object is asked as often with either answer.

Ten answers per question: each caption counts as two annotators (the value it states, or the agreed value when it
states none), so a dissenting caption lowers the score of the agreed answer as a dissenting annotator would.
"""

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from captioner.data.coco import load_coco_captions, read_json
from captioner.data.caption_facts import CaptionFacts, CaptionReader
from captioner.data.vqa_coco_lexicon import ANIMALS, FOODS, PLURAL_OBJECTS
from captioner.errors import CaptionerError
from captioner.evaluation.caption_metrics import write_json_atomic

MAX_COUNT = 5  # counts from 5 up are answered "5 or more"
PROMINENT_AREA = 0.005  # a person box covering at least this share of the photo is a prominent person
COLOR_QUESTIONS, EXIST_QUESTIONS = 2, 2  # per photo, at most
ANSWERS_PER_QUESTION = 10


@dataclass(frozen=True)
class GeneratedQuestion:
    image_id: int
    question: str
    answers: tuple[str, ...]  # ten annotators' answers
    question_type: str
    answer_type: str  # yes/no | number | other
    topic: str = ""  # the object an 'is there' question asks about

    @property
    def chosen(self) -> str:
        """The most common answer (first given on a tie): the VQA `multiple_choice_answer`."""
        return Counter(self.answers).most_common(1)[0][0]


# -- agreement -------------------------------------------------------------------------------------------------
def agreed(values: list[str | None], min_votes: int = 2) -> str | None:
    """The value stated by at least `min_votes` captions and by more than any other value, else None."""
    counts = Counter(v for v in values if v)
    ranked = counts.most_common(2)
    if not ranked or ranked[0][1] < min_votes or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
        return None
    return ranked[0][0]


def caption_answers(values: list[str | None], answer: str) -> tuple[str, ...]:
    """Ten answers, each caption two annotators: what it states, or the agreed answer when it states nothing."""
    said = [v or answer for v in values]
    return tuple(said[i % len(said)] for i in range(ANSWERS_PER_QUESTION))


def _only(values: list[set[str]]) -> list[str | None]:
    """One value per caption where it names exactly one, else None."""
    return [next(iter(v)) if len(v) == 1 else None for v in values]


# -- questions about one photo ---------------------------------------------------------------------------------
@dataclass
class Photo:
    image_id: int
    facts: list[CaptionFacts]  # one per caption
    people: tuple[int, int] | None  # (every person box, prominent ones) on a labelled photo, else None

    def named(self, min_captions: int = 1) -> set[str]:
        """Objects named by at least `min_captions` of the captions."""
        counts = Counter(o for f in self.facts for o in f.objects)
        return {o for o, n in counts.items() if n >= min_captions}


Rule = Callable[[Photo, random.Random], list[GeneratedQuestion]]
RULES: dict[str, Rule] = {}  # question_type → rule, in the order questions are written


def rule(question_type: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[question_type] = fn
        return fn

    return register


def count_answer(n: int) -> str:
    return f"{MAX_COUNT} or more" if n >= MAX_COUNT else str(n)


def _the(noun: str) -> str:
    return f"the {noun}"


def _is_are(noun: str) -> str:
    return "are" if noun in PLURAL_OBJECTS else "is"


@rule("how many people")
def how_many_people(photo: Photo, rng: random.Random) -> list[GeneratedQuestion]:
    if photo.people is None:
        return []  # an unlabelled photo: its number of people is unknown, not zero
    every, prominent = (count_answer(n) for n in photo.people)
    answers = (every,) * 5 + (prominent,) * 5  # the literal reading first: it wins a 5–5 tie
    return [GeneratedQuestion(photo.image_id, "how many people are in the picture?", answers, "how many people", "number")]


@rule("what color")
def what_color(photo: Photo, rng: random.Random) -> list[GeneratedQuestion]:
    asked = []
    for obj in sorted({o for f in photo.facts for o in f.colors}):
        values = [f.colors.get(obj) for f in photo.facts]
        if color := agreed(values):
            asked.append(GeneratedQuestion(photo.image_id, f"what color {_is_are(obj)} {_the(obj)}?", caption_answers(values, color),
                                           "what color", "other"))
    return rng.sample(asked, min(COLOR_QUESTIONS, len(asked)))


def _action_rule(question_type: str, field: str, verb: str) -> Rule:
    def ask(photo: Photo, rng: random.Random) -> list[GeneratedQuestion]:
        stated = [getattr(f, field) for f in photo.facts]
        values = [s[1] if s else None for s in stated]
        thing = agreed(values)
        if thing is None:
            return []
        subject = agreed([s[0] for s in stated if s and s[1] == thing]) or "person"
        return [GeneratedQuestion(photo.image_id, f"what is the {subject} {verb}?", caption_answers(values, thing), question_type, "other")]

    return ask


rule("what is holding")(_action_rule("what is holding", "held", "holding"))
rule("what is riding")(_action_rule("what is riding", "ridden", "riding"))


def _one_of_rule(question_type: str, question: str, of: Callable[[CaptionFacts], set[str]]) -> Rule:
    """'what sport is this?': one value agreed by the captions, and no second value named by two of them."""

    def ask(photo: Photo, rng: random.Random) -> list[GeneratedQuestion]:
        per_caption = [of(f) for f in photo.facts]
        named_twice = [v for v, n in Counter(v for s in per_caption for v in s).items() if n >= 2]
        values = _only(per_caption)
        answer = agreed(values)
        if answer is None or len(named_twice) > 1:
            return []
        return [GeneratedQuestion(photo.image_id, question, caption_answers(values, answer), question_type, "other")]

    return ask


rule("what sport")(_one_of_rule("what sport", "what sport is this?", lambda f: f.sports))
rule("what animal")(_one_of_rule("what animal", "what animal is this?", lambda f: f.objects & set(ANIMALS)))
rule("what food")(_one_of_rule("what food", "what food is this?", lambda f: f.objects & set(FOODS)))
rule("what room")(_one_of_rule("what room", "what room is this?", lambda f: f.rooms))


def exist_question(image_id: int, obj: str, present: bool) -> GeneratedQuestion:
    text = f"are there {obj} in the picture?" if obj in PLURAL_OBJECTS else f"is there {'an' if obj[0] in 'aeiou' else 'a'} {obj} in the picture?"
    return GeneratedQuestion(image_id, text, ("yes" if present else "no",) * ANSWERS_PER_QUESTION, "is there", "yes/no", obj)


@rule("is there")
def is_there(photo: Photo, rng: random.Random) -> list[GeneratedQuestion]:
    """The 'yes' half; `questions_for_photos` adds the matched 'no' on another photo."""
    named = sorted(photo.named(min_captions=2))
    return [exist_question(photo.image_id, o, True) for o in rng.sample(named, min(EXIST_QUESTIONS, len(named)))]


def matched_negatives(photos: list[Photo], positives: list[GeneratedQuestion], rng: random.Random) -> list[GeneratedQuestion]:
    """For each 'yes' about an object, the same question about a photo whose captions never name it: 'no'."""
    named = [(p.image_id, p.named()) for p in photos]
    never_named = {topic: [i for i, names in named if topic not in names] for topic in sorted({q.topic for q in positives})}
    return [exist_question(rng.choice(never_named[q.topic]), q.topic, False) for q in positives if never_named[q.topic]]


# -- files -----------------------------------------------------------------------------------------------------
def read_photos(captions: str | Path, persons: str | Path | None = None, reader: CaptionReader | None = None) -> list[Photo]:
    """The photos of a COCO captions file (by id) with what their captions state, and their person counts."""
    coco = load_coco_captions(captions)
    if not coco.anns:
        raise CaptionerError(f"{captions}: no captions (its 'annotations' list is empty)")
    people = read_person_counts(persons, set(coco.imgs), captions) if persons is not None else {}
    reader = reader or CaptionReader()
    photos = []
    for image_id in sorted(coco.imgs):
        texts = [a["caption"] for a in sorted(coco.imgToAnns[image_id], key=lambda a: a["id"])]
        photos.append(Photo(image_id, [reader.read(str(t)) for t in texts], people.get(image_id)))
    return photos


def read_person_counts(path: str | Path, image_ids: set[int], captions: str | Path) -> dict[int, tuple[int, int]]:
    """image_id → (person boxes, prominent person boxes) for each labelled photo of a COCO instances file."""
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise CaptionerError(f"{path}: not a COCO boxes file (needs 'images', 'annotations' and 'categories' lists)")
    try:
        areas = {int(img["id"]): float(img["width"]) * float(img["height"]) for img in data["images"]}
        person = {c["id"] for c in data["categories"] if c["name"] == "person"}
        boxes = [(int(a["image_id"]), a["category_id"], float(a["bbox"][2]) * float(a["bbox"][3])) for a in data["annotations"]]
    except (KeyError, TypeError, ValueError, IndexError):
        raise CaptionerError(f"{path}: every image needs id, width and height, every box image_id, category_id and bbox") from None
    foreign = sorted(set(areas) - image_ids)
    if foreign:
        raise CaptionerError(f"{path}: {len(foreign)} of its {len(areas)} image ids are not in {captions} (e.g. {foreign[0]}); "
                             "boxes and captions must describe the same photos")
    unlabelled = {int(i) for i in data.get("unlabelled_image_ids", [])}
    counts = {i: [0, 0] for i in areas if i not in unlabelled}
    for image_id, category, area in boxes:
        if image_id not in counts:
            raise CaptionerError(f"{path}: a box is on image {image_id}, which its 'images' list does not hold as labelled")
        if category in person:
            counts[image_id][0] += 1
            counts[image_id][1] += area >= PROMINENT_AREA * areas[image_id]
    return {i: (every, prominent) for i, (every, prominent) in counts.items()}


def questions_for_photos(photos: list[Photo], rng: random.Random) -> list[GeneratedQuestion]:
    """Every rule on every photo (in id order), then the matched 'no' of every 'is there ... ? yes'."""
    asked = [q for photo in photos for ask in RULES.values() for q in ask(photo, rng)]
    return asked + matched_negatives(photos, [q for q in asked if q.question_type == "is there"], rng)


def write_vqa_files(questions: list[GeneratedQuestion], out_dir: Path, split: str, source: str) -> tuple[Path, Path]:
    """VQA v2 questions/annotations files; question ids are image_id·100 + the question's rank on its photo."""
    info = {"description": f"captioner COCO-QA-style questions ({split}) from {source}", "version": "1.0"}
    common = {"info": info, "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": split, "license": {}}
    records, annotations, rank = [], [], Counter()
    for q in sorted(questions, key=lambda q: q.image_id):  # stable: each photo keeps the order its rules gave
        qid = q.image_id * 100 + rank[q.image_id]
        rank[q.image_id] += 1
        records.append({"question_id": qid, "image_id": q.image_id, "question": q.question})
        annotations.append({"question_id": qid, "image_id": q.image_id, "question_type": q.question_type, "answer_type": q.answer_type,
                            "multiple_choice_answer": q.chosen,
                            "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": n + 1} for n, a in enumerate(q.answers)]})
    if rank and max(rank.values()) > 100:
        raise CaptionerError(f"more than 100 questions on one photo of {source}; question ids would collide")
    paths = out_dir / f"vqa_{split}_questions.json", out_dir / f"vqa_{split}_annotations.json"
    write_json_atomic({**common, "questions": records}, paths[0])
    write_json_atomic({**common, "annotations": annotations}, paths[1])
    return paths


def make_vqa_coco(data_dir: str | Path, out_dir: str | Path, splits: tuple[str, ...] = ("train", "val"), seed: int = 0) -> dict[str, Counter]:
    """Questions for each split from DATA/captions_{split}.json (+ DATA/persons_{split}.json when present) into
    OUT/vqa_{split}_{questions,annotations}.json; returns the number of questions per type of each split."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    reader, made = CaptionReader(), {}
    for split in splits:  # every split is read and checked before anything is written
        persons = data_dir / f"persons_{split}.json"
        photos = read_photos(data_dir / f"captions_{split}.json", persons if persons.is_file() else None, reader)
        made[split] = questions_for_photos(photos, random.Random(f"{seed}-{split}"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, questions in made.items():
        write_vqa_files(questions, out_dir, split, f"{data_dir.name}/captions_{split}.json")
    return {split: Counter(q.question_type for q in questions) for split, questions in made.items()}
