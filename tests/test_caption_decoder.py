import pytest
import torch

from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
from captioner.models.losses import attention_penalty, caption_loss
from helpers import fit_captions

CAPTIONS = torch.tensor([[1, 5, 6, 7, 2, 0], [1, 8, 9, 2, 0, 0], [1, 10, 11, 12, 13, 2]])


def tiny_decoder(**overrides) -> CaptionDecoder:
    config = dict(vocab_size=20, feature_dim=16, embed_dim=32, hidden_dim=64, attention_dim=32, dropout=0.0)
    return CaptionDecoder(DecoderConfig(**{**config, **overrides}))


@pytest.mark.parametrize("options", [{}, {"cell": "gru"}, {"num_layers": 2}, {"gate": "vector", "deep_output": False}])
def test_teacher_forcing_shapes_and_attention_rows_sum_to_one(options):
    decoder = tiny_decoder(**options)
    out = decoder(torch.randn(3, 9, 16), CAPTIONS)
    assert out.logits.shape == (3, 5, 20)
    assert out.alphas.shape == (3, 5, 9)
    real = (CAPTIONS[:, 1:] != 0).float()  # (B, T): steps that predict a word
    torch.testing.assert_close(out.alphas.sum(-1), real)  # padded steps are skipped, their attention all zero


def test_each_caption_gets_the_outputs_it_would_get_alone():
    torch.manual_seed(0)
    decoder = tiny_decoder().eval()
    features = torch.randn(3, 9, 16)
    together = decoder(features, CAPTIONS)
    for i, caption in enumerate(CAPTIONS):
        steps = int((caption[1:] != 0).sum())
        alone = decoder(features[i : i + 1], caption[None, : steps + 1])
        torch.testing.assert_close(together.logits[i, :steps], alone.logits[0])
        torch.testing.assert_close(together.alphas[i, :steps], alone.alphas[0])


def test_padded_steps_do_not_change_the_loss():
    torch.manual_seed(0)
    decoder = tiny_decoder().eval()
    features = torch.randn(3, 9, 16)
    padded = torch.cat([CAPTIONS, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    short, long = (caption_loss(decoder, decoder(features, c), c) for c in (CAPTIONS, padded))
    torch.testing.assert_close(short["loss"], long["loss"])


def test_penalty_is_zero_when_every_location_gets_total_attention_one():
    alphas = torch.eye(4).unsqueeze(0)  # (1, T=4, L=4): step t looks only at location t
    assert attention_penalty(alphas, torch.ones(1, 4)).item() == 0.0
    assert attention_penalty(alphas, torch.tensor([[1.0, 1.0, 0.0, 0.0]])).item() == 2.0  # masked steps ignored


@pytest.mark.parametrize("attention", ["soft", "hard"])
def test_decoder_memorises_a_few_captions(attention):
    torch.manual_seed(0)
    decoder = tiny_decoder(attention=attention)
    features = torch.randn(3, 9, 16)
    fit_captions(decoder, features, CAPTIONS, steps=150)
    decoder.eval()
    logits = decoder(features, CAPTIONS).logits
    mask = CAPTIONS[:, 1:] != 0
    assert (logits.argmax(-1) == CAPTIONS[:, 1:])[mask].all()


def test_hard_attention_gradient_reaches_attention_through_reinforce():
    torch.manual_seed(0)
    decoder = tiny_decoder(attention="hard", expectation_prob=0.0, alpha_c=0.0, entropy_weight=0.0).train()
    out = decoder(torch.randn(3, 9, 16), CAPTIONS)
    assert out.location_log_probs is not None  # sampled: contexts carry no gradient to the attention scores
    terms = caption_loss(decoder, out, CAPTIONS)
    grad_nll = torch.autograd.grad(terms["nll"], decoder.attention.score.weight, allow_unused=True)[0]
    grad_reinforce = torch.autograd.grad(terms["reinforce"], decoder.attention.score.weight)[0]
    assert grad_nll is None or grad_nll.abs().sum() == 0
    assert grad_reinforce.abs().sum() > 0
    assert decoder.reward_baseline.item() != 0.0  # moving average updated


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="cell must be one of"):
        DecoderConfig(cell="transformer")


def test_captions_can_share_their_image_grid_through_owners():
    torch.manual_seed(0)
    decoder = tiny_decoder(memory_dim=12).eval()
    images = torch.randn(2, 9, 16)
    owners = torch.tensor([0, 1, 0])  # captions 0 and 2 describe image 0
    shared = decoder(images, CAPTIONS, owners=owners)
    repeated = decoder(images[owners], CAPTIONS)  # one grid copy per caption
    torch.testing.assert_close(shared.packed_logits, repeated.packed_logits)
    torch.testing.assert_close(shared.alphas, repeated.alphas)


def test_packed_outputs_cover_exactly_the_real_steps():
    out = tiny_decoder()(torch.randn(3, 9, 16), CAPTIONS)
    real = CAPTIONS[:, 1:] != 0
    assert out.packed_logits.shape == (int(real.sum()), 20)
    assert real[out.rows, out.steps].all()


def test_scheduled_sampling_feeds_the_models_own_words_only_when_asked():
    torch.manual_seed(0)
    decoder = tiny_decoder().train()
    features = torch.randn(3, 9, 16)
    forced = decoder(features, CAPTIONS)
    never = decoder(features, CAPTIONS, sample_prob=0.0)
    torch.testing.assert_close(forced.packed_logits, never.packed_logits)  # dropout is 0: same inputs, same outputs
    always = decoder(features, CAPTIONS, sample_prob=1.0)
    assert always.packed_logits.shape == forced.packed_logits.shape
    first_step = forced.steps == 0  # step 0 always reads <start>
    torch.testing.assert_close(always.packed_logits[first_step], forced.packed_logits[first_step])
    assert not torch.allclose(always.packed_logits[~first_step], forced.packed_logits[~first_step])


@pytest.mark.parametrize("options, shared_grids", [({}, True), ({"memory_dim": 12}, True), ({"memory_dim": 12}, False),
                                                   ({"gate": "vector"}, True), ({"gate": None, "deep_output": False}, True)])
def test_hand_written_backward_matches_autograd(options, shared_grids):
    """The fused loop (one LSTM layer, soft attention) gives autograd's loss and gradients, to float precision,
    whether captions share their image's grid (owners) or each has its own."""
    torch.manual_seed(0)
    decoder = tiny_decoder(**options).double()
    images, owners = torch.randn(2, 9, 16, dtype=torch.float64), torch.tensor([0, 1, 0])
    features, owners = (images, owners) if shared_grids else (images[owners], None)

    def gradients(fused: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        decoder.zero_grad()
        decoder._fused_loop_applies = lambda mode: fused  # instance attribute: this decoder only
        loss = caption_loss(decoder, decoder(features, CAPTIONS, owners=owners), CAPTIONS)["loss"]
        loss.backward()
        return loss.detach(), {name: p.grad.clone() for name, p in decoder.named_parameters() if p.grad is not None}

    fused_loss, fused = gradients(True)
    reference_loss, reference = gradients(False)
    torch.testing.assert_close(fused_loss, reference_loss)
    assert fused.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(fused[name], reference[name], msg=name)


def test_training_step_runs_under_bfloat16_autocast():
    """trainer.precision=bf16-mixed: the fused loop runs in float32 inside an autocast region."""
    decoder = tiny_decoder(memory_dim=12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = caption_loss(decoder, decoder(torch.randn(3, 9, 16), CAPTIONS), CAPTIONS)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and decoder.cells[0].weight_hh.grad is not None
