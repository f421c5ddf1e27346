"""Self-critical sequence training: sampling, baselines, the loss, and a tiny run that raises train CIDEr-D."""

import pytest
import torch

from captioner.config import load_config
from captioner.errors import CaptionerError
from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
from captioner.models.decoding import beam_search, greedy_decode
from captioner.models.self_critical import BASELINES, beam_candidates, sample_captions, self_critical_loss, teacher_forced_log_probs
from captioner.text import Vocabulary
from captioner.training.caption_objectives import (CaptionTrainingConfig, CiderReward, check_rewards, reward_text,
                                                  scheduled_sampling_prob)
from helpers import CONFIGS


def tiny_decoder() -> CaptionDecoder:
    torch.manual_seed(0)
    return CaptionDecoder(DecoderConfig(vocab_size=20, feature_dim=16, embed_dim=8, hidden_dim=16, attention_dim=8, dropout=0.0))


def test_samples_are_batched_per_image_and_mask_counts_the_end_token():
    samples = sample_captions(tiny_decoder(), torch.randn(3, 9, 16), samples=5, max_len=7, generator=torch.Generator().manual_seed(0))
    assert samples.tokens.shape == samples.log_probs.shape == samples.mask.shape and samples.tokens.shape[0] == 15
    for row, mask in zip(samples.tokens.tolist(), samples.mask.tolist()):
        generated = int(sum(mask))
        if Vocabulary.end_id in row:
            assert row.index(Vocabulary.end_id) == generated - 1  # <end> is the last word that counts
        assert all(t == Vocabulary.pad_id for t in row[generated:])
    assert samples.log_probs.requires_grad


def test_beam_candidates_are_each_images_beam_hypotheses_with_their_log_probabilities():
    decoder, features = tiny_decoder().eval(), torch.randn(3, 9, 16)
    candidates = beam_candidates(decoder, features, samples=4, max_len=7)
    assert candidates.tokens.shape[0] == 12 and candidates.log_probs.requires_grad
    found = beam_search(decoder, features, beam_size=4, max_len=7)
    for image, (beams, finished) in enumerate(zip(found.beams, found.finished)):
        beams = beams + beams[-1:] * (4 - len(beams))  # fewer finished hypotheses than K: the last one repeats
        for k, (tokens, score) in enumerate(beams):
            row = image * 4 + k
            length = int(candidates.mask[row].sum())  # the words and the <end>, which counts as one
            assert candidates.tokens[row, :length].tolist() == tokens + ([Vocabulary.end_id] if finished else [])
            assert float(candidates.log_probs[row].sum()) == pytest.approx(score * length, rel=1e-4)  # length-normalised


def test_teacher_forced_log_probs_equal_the_generation_scores():
    decoder, features = tiny_decoder().eval(), torch.randn(2, 9, 16)
    greedy = greedy_decode(decoder, features, max_len=6)
    rows = [[Vocabulary.start_id, *t, *([Vocabulary.end_id] if f else [])] for t, f in zip(greedy.tokens, greedy.finished)]
    captions = torch.nn.utils.rnn.pad_sequence([torch.tensor(r) for r in rows], batch_first=True)
    scored = teacher_forced_log_probs(decoder, features, captions, owners=torch.arange(2))
    torch.testing.assert_close((scored.log_probs * scored.mask).sum(1), greedy.scores, rtol=1e-4, atol=1e-4)


def test_mean_of_others_baseline_favours_the_best_sample_of_each_image():
    rewards = torch.tensor([[1.0, 0.5, 0.0], [2.0, 2.0, 2.0]])
    advantage = rewards - BASELINES.get("mean_others")(rewards, lambda: pytest.fail("greedy not needed"))
    assert advantage[0, 0] > 0 > advantage[0, 2]  # above the others' mean: pushed up; below: pushed down
    torch.testing.assert_close(advantage[1], torch.zeros(3))  # all equal: nothing to learn
    torch.testing.assert_close(advantage.sum(dim=1), 1.5 * (rewards - rewards.mean(1, keepdim=True)).sum(1))


def test_greedy_baseline_compares_each_sample_with_the_images_greedy_caption():
    rewards = torch.tensor([[1.0, 0.2], [0.1, 0.3]])
    advantage = rewards - BASELINES.get("greedy")(rewards, lambda: torch.tensor([0.5, 0.2]))
    assert (advantage.sign() == torch.tensor([[1.0, -1.0], [-1.0, 1.0]])).all()


def test_loss_raises_the_log_probability_of_captions_with_positive_advantage():
    log_probs = torch.zeros(2, 3, requires_grad=True)
    loss = self_critical_loss(log_probs, torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]), torch.tensor([1.0, -1.0]))
    loss.backward()
    assert (log_probs.grad[0, :2] < 0).all() and log_probs.grad[0, 2] == 0  # descent raises them; padding untouched
    assert (log_probs.grad[1] > 0).all()


def test_the_reward_counts_end_so_captions_cut_mid_phrase_or_never_ended_score_lower():
    references = {0: ["a man riding a horse on a beach", "a man riding a horse", "a man on a horse"],
                  1: ["a dog on a couch", "a brown dog sleeping"]}
    vocab = Vocabulary.build([r for refs in references.values() for r in refs])
    reward = CiderReward(references)

    def score(text: str, finished: bool) -> float:
        return float(reward([0], [reward_text(vocab, vocab.encode(text, add_special=False), finished)]))

    ended = score("a man riding a horse", finished=True)
    assert reward_text(vocab, vocab.encode("a man riding a horse"), finished=True) == "a man riding a horse <end>"
    assert ended > score("a man riding a horse on a", finished=True)  # "a <end>" is in no reference
    assert ended > score("a man riding a horse", finished=False)  # ran out of steps: no credit for "horse <end>"


def test_nan_or_all_zero_rewards_stop_training_naming_the_step():
    with pytest.raises(CaptionerError, match="at step 7"):
        check_rewards(torch.tensor([1.0, float("nan")]), step=7)
    with pytest.raises(CaptionerError, match="scored CIDEr-D 0 at step 3"):
        check_rewards(torch.zeros(4), step=3)


def test_scheduled_sampling_ramps_up_to_its_maximum():
    config = CaptionTrainingConfig(scheduled_sampling_start=0, scheduled_sampling_every=5,
                                   scheduled_sampling_increase=0.05, scheduled_sampling_max=0.25)
    assert [scheduled_sampling_prob(epoch, config) for epoch in (0, 4, 5, 10, 29, 100)] == pytest.approx([0, 0, 0.05, 0.1, 0.25, 0.25])
    assert scheduled_sampling_prob(50, CaptionTrainingConfig()) == 0.0  # off by default


def test_self_critical_needs_a_model_to_start_from():
    with pytest.raises(CaptionerError, match="set training.init_from"):
        load_config(CONFIGS / "caption_tiny.yaml", ["training.objective=scst"])
