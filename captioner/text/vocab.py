"""Vocabulary: word ↔ id with the special tokens <pad>=0, <start>=1, <end>=2, <unk>=3."""

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from captioner.errors import CaptionerError
from captioner.text.function_words import is_content_word
from captioner.text.tokenizer import tokenize

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)


class Vocabulary:
    pad_id, start_id, end_id, unk_id = range(4)

    def __init__(self, words: Sequence[str]) -> None:
        """`words` are the ordinary words, most frequent first; the specials are prepended."""
        self.itos: list[str] = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary words must be unique")

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1, max_size: int | None = None) -> "Vocabulary":
        """Keep words seen at least `min_count` times (at most `max_size`), most frequent first, ties alphabetical."""
        counts = Counter(word for caption in captions for word in tokenize(caption))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(words[:max_size] if max_size else words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def encode(self, text: str | Sequence[str], add_special: bool = True) -> list[int]:
        """Caption (or tokens) → ids, with <start> ... <end> around them by default; unknown words → <unk>."""
        tokens = tokenize(text) if isinstance(text, str) else text
        ids = [self.stoi.get(t, self.unk_id) for t in tokens]
        return [self.start_id, *ids, self.end_id] if add_special else ids

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """Ids → words, skipping <pad>/<start> and stopping at the first <end>."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i not in (self.pad_id, self.start_id):
                words.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return words

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.decode_tokens(ids))

    def to_dict(self) -> dict:
        return {"itos": self.itos}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        itos = data.get("itos") if isinstance(data, dict) else None
        if not isinstance(itos, list) or tuple(itos[:4]) != SPECIALS or not all(isinstance(w, str) for w in itos):
            raise CaptionerError("not a captioner vocabulary: expected {'itos': ['<pad>', '<start>', '<end>', '<unk>', ...]}")
        return cls(itos[4:])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise CaptionerError(f"vocabulary file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CaptionerError(f"vocabulary file {path} is not valid JSON: {e}") from None
        return cls.from_dict(data)

    def content_words(self) -> list[bool]:
        """Per id: whether the word is a content word (not a special token, not in FUNCTION_WORDS)."""
        return [word not in SPECIALS and is_content_word(word) for word in self.itos]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos
