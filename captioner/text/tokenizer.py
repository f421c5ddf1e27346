"""Caption tokenizer: lowercase words and numbers, no downloaded nltk data needed."""

import re
import unicodedata

# Words may keep inner apostrophes/hyphens ("man's", "t-shirt"); everything else that is not a letter or digit splits.
_TOKEN = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """'A man, riding a Horse.' → ['a', 'man', 'riding', 'a', 'horse']."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return _TOKEN.findall(text)
