import pytest
import torch

from captioner.models.vqa import VQAConfig, VQAModel, bce_loss, grid_coordinates, soft_cross_entropy
from captioner.models.vqa_reasoning import REASONERS, WordStates

VOCAB, ANSWERS, CHANNELS, LOCATIONS = 20, 7, 12, 9  # a 3×3 grid of 12 channels


def small_model(**overrides) -> VQAModel:
    config = VQAConfig(vocab_size=VOCAB, num_answers=ANSWERS, feature_dim=CHANNELS, embed_dim=8, hidden_dim=16,
                       attention_dim=8, glimpses=3, fusion_dim=16, dropout=0.0)
    torch.manual_seed(0)
    return VQAModel(VQAConfig(**{**config.__dict__, **overrides}))


def questions(*lengths: int, pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random word ids (never <pad> = 0) padded with 0 to `pad_to` (default: the longest): (B, T), lengths (B,)."""
    generator = torch.Generator().manual_seed(1)
    width = pad_to or max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)  # (B, T)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(1, VOCAB, (length,), generator=generator)
    return ids, torch.tensor(lengths)


def grids(batch: int, seed: int = 2) -> torch.Tensor:
    return torch.randn(batch, LOCATIONS, CHANNELS, generator=torch.Generator().manual_seed(seed))  # (B, L, C)


def test_one_answer_score_per_answer_and_one_attention_map_per_glimpse():
    model = small_model()
    logits, alphas = model(grids(4), *questions(6, 3, 1, 4))
    assert logits.shape == (4, ANSWERS)
    assert alphas.shape == (4, 3, LOCATIONS)  # (B, G, L)
    torch.testing.assert_close(alphas.sum(dim=-1), torch.ones(4, 3))
    assert not torch.allclose(alphas[:, 0], alphas[:, 1])  # each glimpse has its own scores


def test_padding_a_question_longer_does_not_change_the_answer():
    model = small_model(dropout=0.5).eval()
    features = grids(3)
    short, lengths = questions(5, 2, 4)
    padded, _ = questions(5, 2, 4, pad_to=12)
    torch.testing.assert_close(model(features, short, lengths), model(features, padded, lengths))
    alone, _ = model(features[1:2], short[1:2, :2], lengths[1:2])  # the batch's padding does not leak either
    torch.testing.assert_close(alone, model(features, short, lengths)[0][1:2])


def test_blind_model_answers_from_the_question_alone():
    model = small_model(use_image=False).eval()
    ids, lengths = questions(4, 3)
    logits, alphas = model(grids(2, seed=2), ids, lengths)
    other_images, _ = model(grids(2, seed=3), ids, lengths)
    torch.testing.assert_close(logits, other_images)
    torch.testing.assert_close(alphas, torch.full((2, 3, LOCATIONS), 1 / LOCATIONS))  # reported as uniform
    assert not hasattr(model, "reasoner")
    seeing = small_model().eval()
    assert not torch.allclose(seeing(grids(2, seed=2), ids, lengths)[0], seeing(grids(2, seed=3), ids, lengths)[0])


def test_coordinate_features_give_each_cell_its_centre():
    coords = grid_coordinates(LOCATIONS, torch.device("cpu"))  # (L, 2) as (x, y), row-major
    torch.testing.assert_close(coords[0], torch.tensor([-2 / 3, -2 / 3]))
    torch.testing.assert_close(coords[1], torch.tensor([0.0, -2 / 3]))  # next column, same row
    torch.testing.assert_close(coords[3], torch.tensor([-2 / 3, 0.0]))  # next row
    with pytest.raises(ValueError, match="square grid"):
        grid_coordinates(6, torch.device("cpu"))
    logits, alphas = small_model(coord_features=True)(grids(2), *questions(3, 2))
    assert logits.shape == (2, ANSWERS) and alphas.shape == (2, 3, LOCATIONS)


def test_bce_sums_over_answers_and_averages_over_questions():
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, -3.0]])
    targets = torch.tensor([[1.0, 0.0, 1 / 3], [0.0, 2 / 3, 0.0]])
    per_answer = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # (B, K)
    torch.testing.assert_close(bce_loss(logits, targets), per_answer.sum(dim=1).mean())


def test_soft_cross_entropy_renormalises_scores_and_skips_unanswerable_questions():
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, -3.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])  # the second has no answer in the vocabulary
    expected = -(0.5 * logits[0].log_softmax(0)[0] + 0.5 * logits[0].log_softmax(0)[2])
    torch.testing.assert_close(soft_cross_entropy(logits, targets), expected)
    assert soft_cross_entropy(logits, torch.zeros(2, 3)) == 0


@pytest.mark.parametrize("loss", ["bce", "soft_ce"])
def test_probabilities_match_the_loss_and_predict_ranks_them(loss):
    model = small_model(loss=loss).eval()
    features, (ids, lengths) = grids(2), questions(3, 5)
    probs, indices, alphas = model.predict(features, ids, lengths, top_k=4)
    assert probs.shape == indices.shape == (2, 4) and alphas.shape == (2, 3, LOCATIONS)
    assert ((probs >= 0) & (probs <= 1)).all() and (probs[:, :-1] >= probs[:, 1:]).all()
    every = model.probabilities(model(features, ids, lengths)[0])  # (B, K)
    if loss == "soft_ce":
        torch.testing.assert_close(every.sum(dim=1), torch.ones(2))
    torch.testing.assert_close(probs, every.gather(1, indices))


def test_the_loss_trains_attention_and_question_encoder():
    model = small_model()
    logits, _ = model(grids(4), *questions(6, 3, 1, 4))
    targets = torch.zeros(4, ANSWERS).index_fill_(1, torch.tensor([2]), 1.0)  # (B, K)
    model.loss(logits, targets).backward()
    attention = model.reasoner.attention
    for name, p in [("feature_proj", attention.feature_proj.weight), ("query_proj", attention.query_proj.weight),
                    ("score", attention.score.weight), ("embedding", model.question_encoder.embed.weight)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches the {name}"
    assert model.question_encoder.embed.weight.grad[0].abs().sum() == 0  # <pad> is never trained


def test_config_is_checked():
    with pytest.raises(ValueError, match="loss must be one of"):
        VQAConfig(loss="mse")
    with pytest.raises(ValueError, match="glimpses must be positive"):
        VQAConfig(glimpses=0)
    with pytest.raises(ValueError, match="needs vocab_size, num_answers and feature_dim"):
        VQAModel(VQAConfig())
    with pytest.raises(ValueError, match=r"reasoning must be one of \['film', 'glimpses', 'mac', 'stacked'\]"):
        VQAConfig(reasoning="transformer")


@pytest.mark.parametrize("coords", [False, True], ids=["grid", "grid+coords"])
@pytest.mark.parametrize("reasoning", REASONERS.names())
def test_every_reasoning_answers_with_one_map_per_glimpse_and_trains_end_to_end(reasoning, coords):
    model = small_model(reasoning=reasoning, coord_features=coords)
    logits, alphas = model(grids(4), *questions(6, 3, 1, 4))
    assert logits.shape == (4, ANSWERS) and alphas.shape == (4, 3, LOCATIONS)
    torch.testing.assert_close(alphas.sum(dim=-1), torch.ones(4, 3))
    model.loss(logits, torch.zeros(4, ANSWERS).index_fill_(1, torch.tensor([1]), 1.0)).backward()
    untrained = [name for name, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())
                 and not name.endswith("score.bias")]  # a one-glimpse score's bias shifts every score alike: softmax ignores it
    assert not untrained, f"no gradient reaches {untrained}"
    model.eval()
    padded, lengths = questions(6, 3, 1, 4, pad_to=9)
    torch.testing.assert_close(model(grids(4), padded, lengths)[0], model(grids(4), *questions(6, 3, 1, 4))[0])


def test_stacked_hops_refine_the_query_with_what_they_saw():
    model = small_model(reasoning="stacked").eval()
    features, (ids, lengths) = grids(2), questions(4, 2)
    _, alphas = model(features, ids, lengths)
    stacked = model.reasoner
    v = model.visual(features)  # (B, L, C)
    embedded, u0 = stacked.embed(v), stacked.query(model.question_encoder(ids, lengths))  # (B, L, D), (B, D)
    second = stacked.hops[1]
    u1 = u0 + torch.bmm(alphas[:, :1], embedded).squeeze(1)  # the first hop's glimpse added to the query
    torch.testing.assert_close(alphas[:, 1:2], second(second.project(embedded), u1))
    assert not torch.allclose(alphas[:, 1:2], second(second.project(embedded), u0))


def test_the_question_encoder_reads_many_to_one_and_keeps_every_word_state():
    encoder = small_model().question_encoder.eval()
    ids, lengths = questions(5, 2)
    q, words = encoder.read(ids, lengths)
    assert words.states.shape == (2, 5, 16) and words.mask.tolist() == [[True] * 5, [True, True, False, False, False]]
    torch.testing.assert_close(q, encoder(ids, lengths))  # q is still the state after each question's last word
    torch.testing.assert_close(q[1], words.states[1, 1])
    assert not words.states[1, 2:].any()  # nothing after the second question's end


def test_mac_hops_read_the_question_then_the_grid_where_the_previous_hop_looked():
    model = small_model(reasoning="mac", glimpses=2).eval()
    features, (ids, lengths) = grids(2), questions(5, 2)
    _, alphas = model(features, ids, lengths)
    mac, v = model.reasoner, model.visual(features)  # (B, L, C)
    q, words = model.question_encoder.read(ids, lengths)
    keys, reading, glimpse = mac.keys(v), torch.zeros_like(q), torch.zeros(2, CHANNELS)
    for hop, position in enumerate(mac.positions):  # hop k: its own query of the words, then one read unit for all hops
        reading = mac.control(words, torch.cat([reading, position(q)], dim=1))  # c_k (B, H)
        torch.testing.assert_close(alphas[:, hop : hop + 1], mac.read(keys, reading, glimpse))
        glimpse = torch.bmm(alphas[:, hop : hop + 1], v).squeeze(1)  # g_k (B, C)
    query = torch.randn(2, 32)
    noisy = WordStates(words.states.masked_fill(~words.mask.unsqueeze(-1), 5.0), words.mask)
    torch.testing.assert_close(mac.control(noisy, query), mac.control(words, query))  # what lies past a question's end is never read
    with pytest.raises(ValueError, match="word by word"):
        mac(v, q)


def test_film_conditions_the_grid_itself_on_the_question():
    model = small_model(reasoning="film").eval()
    torch.nn.init.zeros_(model.reasoner.attention.query_proj.weight)  # attention can no longer read q directly...
    features = grids(1).expand(2, -1, -1)
    _, alphas = model(features, *questions(4, 2))
    assert not torch.allclose(alphas[0], alphas[1])  # ...yet two questions look at the same grid differently
    with pytest.raises(ValueError, match="square grid"):
        model(torch.randn(1, 6, CHANNELS), *questions(3))


@pytest.mark.parametrize("reasoning", REASONERS.names())
def test_each_image_once_with_an_index_answers_as_one_grid_per_question(reasoning):
    model = small_model(reasoning=reasoning, coord_features=True).eval()
    images = grids(2)  # two images, asked 3 and 1 questions
    index = torch.tensor([0, 1, 0, 0])
    ids, lengths = questions(6, 3, 1, 4)
    once = model(images, ids, lengths, image_index=index)
    repeated = model(images[index], ids, lengths)  # (B, L, C): the first image copied for each of its questions
    torch.testing.assert_close(once, repeated)
