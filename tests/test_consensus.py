"""Consensus (minimum Bayes risk) captions: the choice, the statistics a model file carries, and the CLI option."""

import pytest
import torch

from captioner.cli import main
from captioner.consensus import candidates, consensus_choice, consensus_tokens
from captioner.errors import CaptionerError
from captioner.evaluation.cider import CiderD
from captioner.inference import Captioner
from captioner.training.runner import train
from helpers import tiny_caption_config

CORPUS = [["a man riding a horse", "a person on a horse"], ["a dog on a couch", "a brown dog"], ["two cats on a bed"]]


@pytest.fixture(scope="module")
def tiny_model(shapes, tmp_path_factory):
    return train(tiny_caption_config(shapes, tmp_path_factory.mktemp("run"), "trainer.max_epochs=3")).model_path


def test_the_choice_is_the_caption_the_others_agree_with():
    scorer = CiderD(CORPUS)
    texts = ["a man riding a horse", "a man on a horse", "a man riding a horse", "a dog on a couch"]
    assert consensus_choice(texts, scorer) == 0  # said twice, and close to the third
    assert consensus_choice(["a dog", "a cat"], scorer) == 0  # no agreement either way: the first (a beam's best)


def test_the_statistics_table_scores_exactly_as_the_corpus_it_came_from():
    scorer = CiderD(CORPUS)
    table = scorer.to_table()
    assert "a man riding" not in table["ngrams"]  # used by one image only: weighted as unseen, not stored
    restored = CiderD.from_table(table)
    refs = scorer.references(CORPUS[0])
    for candidate in ("a man riding a horse", "a dog on a bed", "two cats"):
        assert restored.score(candidate, restored.references(CORPUS[0])) == pytest.approx(scorer.score(candidate, refs))


def test_trained_model_files_carry_them_and_caption_by_consensus(tiny_model, shapes):
    captioner = Captioner.load(tiny_model)
    assert captioner.consensus is not None
    images = sorted((shapes / "images").glob("*.png"))[:3]
    together = captioner.caption(images, consensus=True)
    alone = [captioner.caption([image], consensus=True)[0] for image in images]
    assert [c.text for c in together] == [c.text for c in alone]  # every image samples from its own generator
    for caption in together:
        assert caption.alphas.shape[0] in (len(caption.words), len(caption.words) + 1)  # + <end>
        torch.testing.assert_close(torch.from_numpy(caption.alphas).sum(-1), torch.ones(caption.alphas.shape[0]))


def test_the_consensus_caption_is_the_candidate_that_agrees_most(tiny_model, shapes):
    captioner = Captioner.load(tiny_model)
    grid = captioner.encode_images(sorted((shapes / "images").glob("*.png"))[:2])
    pools = candidates(captioner.decoder, grid)
    assert all(1 + 10 <= len(pool) <= 5 + 10 for pool in pools)  # up to 5 beam hypotheses, then 10 samples
    for pool, (tokens, ended) in zip(pools, consensus_tokens(captioner.decoder, grid, captioner.vocab, captioner.consensus)):
        texts = [" ".join(captioner.vocab.decode_tokens(t)) for t, _ in pool]
        assert (tokens, ended) == pool[consensus_choice(texts, captioner.consensus)]


def test_a_model_file_without_the_statistics_says_so(tiny_model, shapes, tmp_path):
    captioner = Captioner.load(tiny_model)
    captioner.consensus = None
    bare = captioner.save(tmp_path / "bare.pt")
    with pytest.raises(CaptionerError, match="consensus captions need the training captions' statistics"):
        Captioner.load(bare).caption([sorted((shapes / "images").glob("*.png"))[0]], consensus=True)


def test_caption_cli_takes_consensus(tiny_model, shapes, capsys):
    image = sorted((shapes / "images").glob("*.png"))[0]
    assert main(["caption", str(image), "--checkpoint", str(tiny_model), "--consensus", "--quiet"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 and printed[0] == Captioner.load(tiny_model).caption([image], consensus=True)[0].text


def test_evaluate_scores_consensus_captions(tiny_model, shapes, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["evaluate", "--checkpoint", str(tiny_model), "--annotations", str(shapes / "captions_val.json"),
            "--images", str(shapes / "images"), "--consensus", "--workers", "0", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert "images, consensus: " in capsys.readouterr().out and (out / "results.json").is_file()
