"""What a caption states, read with word lists (captioner.data.vqa_coco_lexicon): the objects it names, the colour
it gives an object, who holds or rides what, the sport and the room. Deliberately literal: a phrase counts only
where the lexicon's words appear in it. No Lightning here."""

from dataclasses import dataclass

from captioner.data.vqa_coco_lexicon import COLORS, HELD, OBJECTS, PEOPLE, RIDDEN, ROOMS, SPORTS
from captioner.text.tokenizer import tokenize


# --------------------------------------------------------------------------------------------
class PhraseMatcher:
    """Finds a lexicon's phrases in a token list, longest first; the last word may be plural ('buses', 'knives')."""

    def __init__(self, lexicon: dict[str, tuple[str, ...]]) -> None:
        self.phrases: dict[tuple[str, ...], str] = {}
        for canonical, variants in lexicon.items():
            for variant in variants:
                words = tuple(tokenize(variant))
                for form in _plurals(words):
                    self.phrases.setdefault(form, canonical)
        self.longest = max(len(p) for p in self.phrases)

    def find(self, tokens: list[str]) -> list[tuple[int, int, str]]:
        """(start, end, canonical) of every phrase, left to right, never overlapping."""
        found, i = [], 0
        while i < len(tokens):
            for n in range(min(self.longest, len(tokens) - i), 0, -1):
                canonical = self.phrases.get(tuple(tokens[i : i + n]))
                if canonical:
                    found.append((i, i + n, canonical))
                    i += n
                    break
            else:
                i += 1
        return found


def _plurals(words: tuple[str, ...]) -> list[tuple[str, ...]]:
    *head, last = words
    forms = {last, last + "s", last + "es"}
    if last.endswith("y"):
        forms.add(last[:-1] + "ies")
    if last.endswith("f") or last.endswith("fe"):
        forms.add(last.rstrip("e")[:-1] + "ves")
    if last.endswith("man"):
        forms.add(last[:-3] + "men")
    return [(*head, form) for form in sorted(forms)]


@dataclass
class CaptionFacts:
    """What one caption states."""

    objects: set[str]
    colors: dict[str, str]  # object → the colour said right before it ("a red bus")
    held: tuple[str, str] | None  # (subject, object) of "<person> ... holding ... <object>"
    ridden: tuple[str, str] | None
    sports: set[str]
    rooms: set[str]


class CaptionReader:
    """Reads captions into CaptionFacts; build once, read many."""

    def __init__(self) -> None:
        self.objects, self.colors, self.people = PhraseMatcher(OBJECTS), PhraseMatcher(COLORS), PhraseMatcher(PEOPLE)
        self.sports, self.rooms = PhraseMatcher(SPORTS), PhraseMatcher(ROOMS)

    def read(self, caption: str) -> CaptionFacts:
        tokens = tokenize(caption)
        objects = self.objects.find(tokens)
        return CaptionFacts(
            objects={o for _, _, o in objects},
            colors=_colors(tokens, objects, self.colors),
            held=_action(tokens, objects, self.people, ("holding", "holds", "hold"), HELD),
            ridden=_action(tokens, objects, self.people, ("riding", "rides", "ride"), RIDDEN),
            sports={s for _, _, s in self.sports.find(tokens)},
            rooms={r for _, _, r in self.rooms.find(tokens)},
        )


def _colors(tokens: list[str], objects: list[tuple[int, int, str]], colors: PhraseMatcher) -> dict[str, str]:
    """'a red bus', 'a red double-decker bus' (one word between); never a part of 'black and white'."""
    found: dict[str, str] = {}
    spans = {start: name for start, _, name in colors.find(tokens)}
    for start, _, obj in objects:
        for position in (start - 1, start - 2):
            if position in spans and not _compound_color(tokens, position, spans):
                found.setdefault(obj, spans[position])
                break
            if position in spans:
                break
    return found


def _compound_color(tokens: list[str], position: int, spans: dict[int, str]) -> bool:
    """Is the colour at `position` part of 'black and white' / 'red, white and blue'?"""
    before = position >= 2 and tokens[position - 1] in ("and", "or") and position - 2 in spans
    after = position + 1 < len(tokens) and tokens[position + 1] in ("and", "or")
    return before or after or (position - 1 in spans) or (position + 1 in spans)


def _action(tokens: list[str], objects: list, people: PhraseMatcher, verbs: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, str] | None:
    """(subject, object) for '<person> [is] <verb> [up to 3 words] <object>', the first person before the verb."""
    verb = next((i for i, t in enumerate(tokens) if t in verbs), None)
    if verb is None:
        return None
    subjects = [name for start, _, name in people.find(tokens[:verb])]
    thing = next((name for start, _, name in objects if verb < start <= verb + 4 and name in allowed), None)
    return (subjects[0], thing) if subjects and thing else None
