import pytest

from captioner.errors import CaptionerError
from captioner.text import Vocabulary, tokenize


def test_tokenizer_lowercases_and_drops_punctuation():
    assert tokenize("A man's T-shirt, riding a Horse.") == ["a", "man's", "t-shirt", "riding", "a", "horse"]
    assert tokenize("  ") == []


def test_vocabulary_keeps_frequent_words_after_the_specials():
    vocab = Vocabulary.build(["a dog runs", "a cat sits", "a dog"], min_count=2)
    assert vocab.itos == ["<pad>", "<start>", "<end>", "<unk>", "a", "dog"]


def test_encode_decode_round_trip():
    vocab = Vocabulary.build(["a red circle left of a blue square"])
    ids = vocab.encode("A red circle left of a blue square.")
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id
    assert vocab.decode(ids) == "a red circle left of a blue square"
    assert vocab.decode(vocab.encode("a green circle")) == "a <unk> circle"
    assert vocab.decode([vocab.start_id, 4, vocab.end_id, 5, 5]) == vocab.itos[4]


def test_vocabulary_saves_and_loads_json(tmp_path):
    vocab = Vocabulary.build(["one two two"])
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == vocab


def test_broken_vocabulary_file_is_a_clear_error(tmp_path):
    (tmp_path / "v.json").write_text("{not json")
    with pytest.raises(CaptionerError, match="not valid JSON"):
        Vocabulary.load(tmp_path / "v.json")
    (tmp_path / "v.json").write_text('{"itos": ["a"]}')
    with pytest.raises(CaptionerError, match="not a captioner vocabulary"):
        Vocabulary.load(tmp_path / "v.json")


def test_content_words_are_the_words_that_are_neither_specials_nor_function_words():
    vocab = Vocabulary(["a", "bus", "on", "side", "of", "street"])
    assert [w for w, content in zip(vocab.itos, vocab.content_words()) if content] == ["bus", "street"]
