from captioner.text.tokenizer import tokenize
from captioner.text.vocab import END, PAD, SPECIALS, START, UNK, Vocabulary

__all__ = ["tokenize", "Vocabulary", "PAD", "START", "END", "UNK", "SPECIALS"]
