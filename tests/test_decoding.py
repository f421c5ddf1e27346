import pytest
import torch

from captioner.errors import CaptionerError
from captioner.models.caption_decoder import NEVER_GENERATED, CaptionDecoder, DecoderConfig
from captioner.models.decoding import (Generation, beam_search, block_repeated_ngrams, generate, greedy_decode,
                                       penalise_repeated_words, sample_decode)
from captioner.text import Vocabulary
from helpers import assert_generation_matches_scoring, fit_captions

B, L, C, V = 4, 9, 16, 30


def tiny_decoder(seed: int = 2, scale: float = 3.0, **overrides) -> CaptionDecoder:
    """Random weights, scaled up: at the default init every word is about equally likely and all captions of a
    batch come out the same length; ×3 gives captions that end at different steps, or not at all."""
    torch.manual_seed(seed)
    config = dict(vocab_size=V, feature_dim=C, embed_dim=32, hidden_dim=64, attention_dim=32, dropout=0.0)
    decoder = CaptionDecoder(DecoderConfig(**{**config, **overrides}))
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.mul_(scale)
    return decoder


@pytest.fixture(scope="module")
def memorised() -> tuple[CaptionDecoder, torch.Tensor, list[list[int]]]:
    """A decoder trained for a few seconds to say one caption for each of 3 feature sets."""
    captions = torch.tensor([[1, 5, 6, 7, 2, 0], [1, 8, 9, 2, 0, 0], [1, 10, 11, 12, 13, 2]])  # (3, T+1)
    decoder, features = tiny_decoder(scale=1.0), random_features(batch=3)
    fit_captions(decoder, features, captions, steps=200)
    return decoder, features, [[5, 6, 7], [8, 9], [10, 11, 12, 13]]


def random_features(seed: int = 3, batch: int = B) -> torch.Tensor:
    return torch.randn(batch, L, C, generator=torch.Generator().manual_seed(seed))


def assert_well_formed(out: Generation, batch: int, max_len: int) -> None:
    assert len(out.tokens) == len(out.alphas) == len(out.finished) == batch and out.scores.shape == (batch,)
    for tokens, alphas, finished in zip(out.tokens, out.alphas, out.finished):
        assert len(tokens) <= max_len and Vocabulary.end_id not in tokens
        assert alphas.shape == (len(tokens) + int(finished), L)
        torch.testing.assert_close(alphas.sum(-1), torch.ones(len(alphas)))


@pytest.mark.parametrize(
    "strategy, options", [("greedy", {}), ("sample", {"temperature": 0.7}), ("beam", {"beam_size": 3})]
)
def test_every_strategy_returns_tokens_scores_and_attention_per_image(strategy, options):
    out = generate(tiny_decoder(), random_features(), strategy, max_len=7, **options)
    assert_well_formed(out, B, max_len=7)


def test_beam_of_one_is_greedy():
    decoder, features = tiny_decoder(), random_features()
    greedy = greedy_decode(decoder, features, max_len=12)
    beam = beam_search(decoder, features, beam_size=1, max_len=12, length_penalty=0.0)
    assert beam.tokens == greedy.tokens and beam.finished == greedy.finished
    torch.testing.assert_close(beam.scores, greedy.scores)
    for a, b in zip(beam.alphas, greedy.alphas):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_batched_beam_search_matches_one_image_at_a_time(length_penalty):
    decoder, features = tiny_decoder(), random_features()
    batched = beam_search(decoder, features, beam_size=3, max_len=10, length_penalty=length_penalty)
    for i in range(B):
        alone = beam_search(decoder, features[i : i + 1], beam_size=3, max_len=10, length_penalty=length_penalty)
        assert alone.tokens[0] == batched.tokens[i] and alone.finished[0] == batched.finished[i]
        torch.testing.assert_close(alone.scores[0], batched.scores[i])
        torch.testing.assert_close(alone.alphas[0], batched.alphas[i])


def test_wider_beam_finds_more_likely_captions_than_greedy():
    # Beam search may prune greedy's path for a single image (it is a heuristic), so the claim is on aggregate:
    # over a batch, its captions are more likely, and strictly so for some image (k distinct beams, not k copies).
    for seed in range(2, 5):
        decoder, features = tiny_decoder(seed), random_features(seed + 1)
        greedy = greedy_decode(decoder, features, max_len=10)
        beam = beam_search(decoder, features, beam_size=3, max_len=10, length_penalty=0.0)
        assert beam.scores.sum() >= greedy.scores.sum()
        assert (beam.scores > greedy.scores + 0.1).any()


@pytest.mark.parametrize(
    "strategy, options", [("greedy", {}), ("beam", {"length_penalty": 0.0}), ("beam", {"length_penalty": 0.7})]
)
def test_scores_and_attention_match_teacher_forcing_on_the_returned_caption(strategy, options):
    for seed in range(2, 6):
        decoder, features = tiny_decoder(seed).eval(), random_features(seed + 1)
        out = generate(decoder, features, strategy, max_len=10, **options)
        assert_generation_matches_scoring(decoder, features, out, options.get("length_penalty", 0.0))


def test_without_end_the_best_partial_caption_comes_back_unfinished():
    decoder = tiny_decoder()
    decoder.out.bias.data[Vocabulary.end_id] = -1e9  # <end> can never win
    for strategy, options in [("greedy", {}), ("sample", {}), ("beam", {"beam_size": 3})]:
        out = generate(decoder, random_features(), strategy, max_len=6, **options)
        assert out.finished == [False] * B
        assert [len(t) for t in out.tokens] == [6] * B
        assert all(a.shape == (6, L) for a in out.alphas)
        assert torch.isfinite(out.scores).all()


@pytest.mark.parametrize("max_len", [1, 3])
def test_max_len_is_respected(max_len):
    for strategy in ("greedy", "sample", "beam"):
        assert_well_formed(generate(tiny_decoder(), random_features(), strategy, max_len=max_len), B, max_len)


def test_sampling_is_reproducible_with_a_seeded_generator():
    decoder, features = tiny_decoder(), random_features()
    first, second = (sample_decode(decoder, features, generator=torch.Generator().manual_seed(7)) for _ in range(2))
    assert first.tokens == second.tokens
    torch.testing.assert_close(first.scores, second.scores)
    other = sample_decode(decoder, features, generator=torch.Generator().manual_seed(8))
    assert other.tokens != first.tokens


def test_cold_sampling_approaches_greedy(memorised):
    decoder, features, expected = memorised
    for seed in range(5):
        cold = sample_decode(decoder, features, temperature=0.01, generator=torch.Generator().manual_seed(seed))
        assert cold.tokens == greedy_decode(decoder, features).tokens == expected


def test_decoding_uses_eval_mode_and_restores_the_previous_mode():
    decoder = tiny_decoder(dropout=0.5).train()
    features = random_features()
    assert greedy_decode(decoder, features).tokens == greedy_decode(decoder, features).tokens  # no dropout noise
    assert decoder.training
    decoder.eval()
    beam_search(decoder, features)
    assert not decoder.training


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d, f: sample_decode(d, f, temperature=0.0), "temperature"),
        (lambda d, f: sample_decode(d, f, temperature=-1.0), "temperature"),
        (lambda d, f: beam_search(d, f, beam_size=0), "beam_size"),
        (lambda d, f: greedy_decode(d, f, max_len=0), "max_len"),
        (lambda d, f: beam_search(d, f, max_len=0), "max_len"),
        (lambda d, f: greedy_decode(d, f[0]), "features"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(tiny_decoder(), random_features())


def test_unknown_strategy_names_the_known_ones():
    with pytest.raises(CaptionerError, match="beam, greedy, sample"):
        generate(tiny_decoder(), random_features(), "nucleus")


def test_greedy_and_beam_recover_memorised_captions(memorised):
    decoder, features, expected = memorised
    greedy = greedy_decode(decoder, features)
    beam = beam_search(decoder, features, beam_size=3)
    assert greedy.tokens == beam.tokens == expected
    assert greedy.finished == beam.finished == [True] * 3
    assert [len(a) for a in beam.alphas] == [4, 3, 5]


@pytest.mark.parametrize("strategy, options", [("greedy", {}), ("beam", {"beam_size": 3}), ("sample", {"temperature": 1.0})])
def test_unknown_padding_and_start_are_never_generated(strategy, options):
    decoder = tiny_decoder()
    with torch.no_grad():
        decoder.out.bias[list(NEVER_GENERATED)] = 100.0  # the model would rather say them than anything else
    tokens = generate(decoder, random_features(), strategy, max_len=6, **options).tokens
    assert all(token not in NEVER_GENERATED for caption in tokens for token in caption)
    assert {Vocabulary.pad_id, Vocabulary.start_id, Vocabulary.unk_id} == set(NEVER_GENERATED)


def repeated_ngrams(tokens: list[int], n: int) -> int:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) - len(set(grams))


def test_block_repeated_ngrams_bans_the_word_that_would_repeat_a_trigram():
    words = torch.tensor([[5, 6, 7, 5, 6], [5, 6, 7, 8, 9]])  # row 0 ends in "5 6", which was followed by 7
    logits = torch.zeros(2, 10)
    blocked = block_repeated_ngrams(logits, words, n=3)
    assert blocked[0, 7] == float("-inf") and torch.isfinite(blocked[0, :7]).all() and torch.isfinite(blocked[0, 8:]).all()
    assert torch.isfinite(blocked[1]).all()  # "8 9" never occurred before: nothing to ban
    assert block_repeated_ngrams(logits, words, n=0) is logits


@pytest.mark.parametrize(
    "strategy, options", [("greedy", {}), ("sample", {"temperature": 1.0}), ("beam", {"beam_size": 3})]
)
def test_no_repeat_ngram_size_keeps_every_caption_free_of_repeated_trigrams(strategy, options):
    decoder, features = tiny_decoder(seed=0, scale=2.0), random_features(batch=16)
    seeded = {"generator": torch.Generator().manual_seed(0)} if strategy == "sample" else {}
    free = generate(decoder, features, strategy, max_len=30, **options, **seeded)
    assert sum(repeated_ngrams(t, 3) for t in free.tokens) > 0  # this decoder does repeat itself when allowed
    seeded = {"generator": torch.Generator().manual_seed(0)} if strategy == "sample" else {}
    blocked = generate(decoder, features, strategy, max_len=30, no_repeat_ngram_size=3, **options, **seeded)
    assert all(repeated_ngrams(t, 3) == 0 for t in blocked.tokens)
    assert_well_formed(blocked, 16, max_len=30)


def test_penalise_repeated_words_lowers_only_the_words_already_in_the_row():
    words = torch.tensor([[5, 6], [7, 7]])  # (R, t)
    penalty = torch.zeros(10)
    penalty[[5, 7]] = float("inf")  # words 5 and 7 never repeat
    penalty[6] = 2.0  # word 6 may, at e^-2 of its odds
    out = penalise_repeated_words(torch.zeros(2, 10), words, penalty)
    assert out[0, 5] == float("-inf") and out[0, 6] == -2.0 and out[1, 7] == float("-inf")
    assert (out[0, [0, 1, 2, 3, 4, 7, 8, 9]] == 0).all() and (out[1, :7] == 0).all()  # unseen, or free to repeat
    assert penalise_repeated_words(out, words, None) is out


@pytest.mark.parametrize(
    "strategy, options", [("greedy", {}), ("sample", {"temperature": 1.0}), ("beam", {"beam_size": 3})]
)
def test_an_infinite_word_repeat_penalty_keeps_those_words_to_one_use_per_caption(strategy, options):
    decoder, features = tiny_decoder(seed=0, scale=2.0), random_features(batch=16)
    once = torch.zeros(V)
    once[15:] = float("inf")  # "content words": at most once each; the rest (and <end>) as often as the model likes
    seeded = {"generator": torch.Generator().manual_seed(0)} if strategy == "sample" else {}
    free = generate(decoder, features, strategy, max_len=30, **options, **seeded)
    assert any(len(set(once_used(t))) < len(once_used(t)) for t in free.tokens)  # it does repeat them when allowed
    seeded = {"generator": torch.Generator().manual_seed(0)} if strategy == "sample" else {}
    limited = generate(decoder, features, strategy, max_len=30, word_repeat_penalty=once, **options, **seeded)
    assert all(len(set(once_used(t))) == len(once_used(t)) for t in limited.tokens)
    assert_well_formed(limited, 16, max_len=30)


def once_used(tokens: list[int]) -> list[int]:
    return [t for t in tokens if t >= 15]


def test_beam_search_lists_its_finished_beams_best_first():
    out = beam_search(tiny_decoder(), random_features(), beam_size=3, max_len=12)
    for tokens, score, beams in zip(out.tokens, out.scores.tolist(), out.beams):
        assert 1 <= len(beams) <= 3 and beams[0] == (tokens, pytest.approx(score))
        assert [s for _, s in beams] == sorted((s for _, s in beams), reverse=True)
