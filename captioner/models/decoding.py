"""Caption generation from grid features: greedy, sampling with a temperature, and batched beam search.

All strategies drive the decoder's step API (`prepare` once, then `step` per word) and return a `Generation`.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from captioner.models.caption_decoder import CaptionDecoder, DecoderState, Memory, StepOutput
from captioner.registry import Registry
from captioner.text import Vocabulary

START_ID, END_ID = Vocabulary.start_id, Vocabulary.end_id

Chooser = Callable[[torch.Tensor], torch.Tensor]  # logits (B, V) → next tokens (B,)


@dataclass
class Generation:
    """One result per image. `tokens` exclude <start> and <end>; `alphas` include the <end> step when produced."""

    tokens: list[list[int]]
    scores: torch.Tensor  # (B,) log-probability of each sequence; beam search: the length-normalised ranking score
    alphas: list[torch.Tensor]  # per image (T_i, L)
    finished: list[bool]  # whether <end> was produced
    beams: list[list[tuple[list[int], float]]] | None = None  # beam search: per image, up to k (tokens, score), best first


def block_repeated_ngrams(logits: torch.Tensor, words: torch.Tensor, n: int) -> torch.Tensor:
    """Forbid every word that would repeat an n-gram already in its row: logits (R, V), words so far (R, t).

    A word w is banned after ... a b when "a b w" occurred earlier in the same row (n = 3). n < 1 disables.
    """
    if n < 1 or words.size(1) < n - 1:
        return logits
    if n == 1:
        return logits.scatter(1, words, float("-inf"))
    windows = words.unfold(1, n - 1, 1)  # (R, t-n+2, n-1): every run of n-1 words
    last = windows[:, -1:]  # (R, 1, n-1): the n-1 words the next one would follow
    seen = (windows[:, :-1] == last).all(dim=-1)  # (R, t-n+1): earlier runs equal to it, each followed by a word
    rows, starts = seen.nonzero(as_tuple=True)
    if rows.numel() == 0:
        return logits
    banned = words[rows, starts + n - 1]  # the word that followed each earlier run
    return logits.index_put((rows, banned), logits.new_tensor(float("-inf")))


def penalise_repeated_words(logits: torch.Tensor, words: torch.Tensor, penalty: torch.Tensor | None) -> torch.Tensor:
    """Lower every word already in its row by its penalty: logits (R, V), words so far (R, t), penalty (V,) ≥ 0
    (0: the word may repeat freely; inf: never). None disables."""
    if penalty is None or words.size(1) == 0:
        return logits
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, words, True)  # (R, V)
    return logits - torch.where(seen, penalty, penalty.new_zeros(()))  # inf − inf never arises: penalties are ≥ 0


@dataclass(frozen=True)
class RepeatRules:
    """What a caption may not repeat: any n-gram of `ngram_size` words (0: none), and each word by `word_penalty`."""

    ngram_size: int = 0
    word_penalty: torch.Tensor | None = None  # (V,)

    def apply(self, logits: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """logits (R, V) of the next word after words (R, t) → with the repeats these rules ban lowered."""
        return penalise_repeated_words(block_repeated_ngrams(logits, words, self.ngram_size), words, self.word_penalty)


STRATEGIES: Registry[Callable[..., Generation]] = Registry("decoding strategy")


def generate(decoder: CaptionDecoder, features: torch.Tensor, strategy: str = "greedy", **kwargs) -> Generation:
    """Decode features (B, L, C) with a registered strategy (greedy | sample | beam); kwargs go to it."""
    return STRATEGIES.get(strategy)(decoder, features, **kwargs)


# -- greedy and sampling: the whole batch steps together, finished rows are frozen -------------------------------
@STRATEGIES.register("greedy")
@torch.no_grad()
def greedy_decode(
    decoder: CaptionDecoder, features: torch.Tensor, max_len: int = 20, no_repeat_ngram_size: int = 0,
    word_repeat_penalty: torch.Tensor | None = None,
) -> Generation:
    """Take the most probable word at every step (never one that repeats an n-gram of that size, when set; with
    `word_repeat_penalty` (V,), a word already in the caption loses that much log-probability)."""
    _check_common(features, max_len)
    rules = RepeatRules(no_repeat_ngram_size, word_repeat_penalty)
    with _eval_mode(decoder):
        return _decode_stepwise(decoder, features, max_len, lambda logits: logits.argmax(dim=-1), rules)


@STRATEGIES.register("sample")
@torch.no_grad()
def sample_decode(
    decoder: CaptionDecoder,
    features: torch.Tensor,
    max_len: int = 20,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    no_repeat_ngram_size: int = 0,
    word_repeat_penalty: torch.Tensor | None = None,
) -> Generation:
    """Sample every word from softmax(logits / temperature) after the repeat rules (as greedy's); scores are
    log-probabilities under the model (T = 1)."""
    _check_common(features, max_len)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")

    def choose(logits: torch.Tensor) -> torch.Tensor:
        probs = (logits / temperature).softmax(dim=-1)  # (B, V)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)

    with _eval_mode(decoder):
        return _decode_stepwise(decoder, features, max_len, choose, RepeatRules(no_repeat_ngram_size, word_repeat_penalty))


def _decode_stepwise(decoder: CaptionDecoder, features: torch.Tensor, max_len: int, choose: Chooser, rules: RepeatRules) -> Generation:
    memory, state = decoder.prepare(features)
    B = features.size(0)
    tokens = torch.full((B,), START_ID, dtype=torch.long, device=features.device)  # (B,)
    done = torch.zeros(B, dtype=torch.bool, device=features.device)  # (B,)
    scores = features.new_zeros(B, dtype=torch.float)  # (B,)
    words = torch.empty(B, 0, dtype=torch.long, device=features.device)  # (B, t)
    alphas, counted = [], []
    for _ in range(max_len):
        out = decoder.step(tokens, state, memory)
        logits = rules.apply(out.logits, words)  # (B, V)
        chosen = choose(logits)  # (B,)
        log_p = out.logits.float().log_softmax(dim=-1).gather(1, chosen.unsqueeze(1)).squeeze(1)  # (B,)
        scores += log_p.masked_fill(done, 0.0)  # finished rows keep stepping but no longer count
        words = torch.cat([words, chosen.unsqueeze(1)], dim=1)  # (B, t+1)
        alphas.append(out.alpha)
        counted.append(~done)
        done = done | (chosen == END_ID)
        tokens, state = chosen, out.state
        if bool(done.all()):
            break
    # (B, T), (B, T, L), (B, T)
    return _split_rows(words, torch.stack(alphas, 1), torch.stack(counted, 1), scores)


def _split_rows(words: torch.Tensor, alphas: torch.Tensor, counted: torch.Tensor, scores: torch.Tensor) -> Generation:
    """Per image: the counted prefix of its row, with a final <end> moved from the tokens to `finished`."""
    tokens, maps, finished = [], [], []
    for row, length in enumerate(counted.sum(dim=1).tolist()):
        ids = words[row, :length].tolist()
        ended = ids[-1] == END_ID
        tokens.append(ids[:-1] if ended else ids)
        maps.append(alphas[row, :length])  # (T_i, L)
        finished.append(ended)
    return Generation(tokens, scores, maps, finished)


# -- beam search: B images × k beams in one (B·k) batch ----------------------------------------------------------
@STRATEGIES.register("beam")
@torch.no_grad()
def beam_search(
    decoder: CaptionDecoder,
    features: torch.Tensor,
    beam_size: int = 3,
    max_len: int = 20,
    length_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    word_repeat_penalty: torch.Tensor | None = None,
) -> Generation:
    """Batched beam search; finished hypotheses rank by log p / len**length_penalty (len counts <end>; 0 disables).

    A hypothesis that produced <end> always wins over partial ones; the best partial hypothesis is returned
    (finished=False) only for an image where no <end> appeared within max_len words. With no_repeat_ngram_size
    = n, no hypothesis repeats an n-gram of its own; `word_repeat_penalty` (V,) lowers the words it already has.
    """
    _check_common(features, max_len)
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    with _eval_mode(decoder):
        rules = RepeatRules(no_repeat_ngram_size, word_repeat_penalty)
        return _BeamSearch(decoder, features, beam_size, max_len, length_penalty, rules).run()


@dataclass(order=True)
class _Hypothesis:
    score: float  # length-normalised: what hypotheses are ranked by
    tokens: list[int] = field(compare=False)  # without <start> and <end>
    path: list[int] = field(compare=False)  # its row at each step, first step first: where its attention maps are
    finished: bool = field(compare=False)


class _BeamSearch:
    """The attention history is kept as each step's maps (B·k, L) and each row's path through the steps' rows,
    so a step copies a few integers per row, not every row's maps so far; maps are gathered for the results only.

    Images whose best caption is certain leave the batch: the decoder steps only the live images' rows (`live`,
    their ids; the step's tensors are theirs alone, in that order), so a batch costs the sum of its images'
    lengths, not its longest times its size. Paths hold global rows (image·k + beam), whatever the live set."""

    def __init__(
        self, decoder: CaptionDecoder, features: torch.Tensor, k: int, max_len: int, length_penalty: float,
        rules: RepeatRules = RepeatRules(),
    ) -> None:
        self.decoder, self.features = decoder, features
        self.k, self.max_len, self.length_penalty, self.rules = k, max_len, length_penalty, rules
        self.B = features.size(0)
        self.hypotheses: list[list[_Hypothesis]] = [[] for _ in range(self.B)]  # finished, per image
        self.done = [False] * self.B
        self.alphas: list[torch.Tensor] = []  # per step: (B·k, L), the attention of every row at that step
        self.live = torch.arange(self.B, device=features.device)  # (n,): the images still searched, in row order

    def run(self) -> Generation:
        B, k, device = self.B, self.k, self.features.device
        memory, state = self.decoder.prepare(self.features)  # the memory stays one per image (see CaptionDecoder.step)
        scores = torch.full((B, k), float("-inf"), device=device)  # (n, k)
        scores[:, 0] = 0.0  # only one live beam per image at first: no k copies of one hypothesis
        words = torch.empty(B * k, 0, dtype=torch.long, device=device)  # (n·k, t)
        paths = torch.empty(B * k, 0, dtype=torch.long, device=device)  # (n·k, t): each row's global row at every step
        out = self._first_step(memory, state)
        for t in range(self.max_len):
            rows = self._rows(self.live)  # (n·k,): the global row of each live row
            self.alphas.append(out.alpha.new_zeros(B * k, out.alpha.size(1)).index_copy_(0, rows, out.alpha))
            log_probs = out.logits.float().log_softmax(dim=-1)  # (n·k, V): the model's, before any word is banned
            log_probs = self.rules.apply(log_probs, words)
            top, beams, chosen = self._candidates(scores, log_probs)  # (n, 2k) each
            self._collect_finished(top, beams, chosen, words, paths, rows)
            scores, beams, chosen = self._survivors(top, beams, chosen)  # (n, k) each
            index = (beams + self._offsets()).view(-1)  # (n·k,): live row of each survivor's parent beam
            words = torch.cat([words.index_select(0, index), chosen.view(-1, 1)], dim=1)  # (n·k, t+1)
            paths = torch.cat([paths.index_select(0, index), rows.index_select(0, index).view(-1, 1)], dim=1)  # (n·k, t+1)
            if self._all_done(scores, length=t + 1) or t + 1 == self.max_len:
                break
            keep = self._still_live()  # (n',): positions in the live set of the images not yet done
            if keep is not None:
                scores, words, paths, chosen, index, memory = self._compact(keep, scores, words, paths, chosen, index, memory)
            out = self.decoder.step(chosen.view(-1), out.state.select(index), memory)  # survivors' words (n·k,)
        return self._result(scores, words, paths)

    def _rows(self, images: torch.Tensor) -> torch.Tensor:
        """images (n,) → their k rows each, image-major (n·k,)."""
        return (images.view(-1, 1) * self.k + torch.arange(self.k, device=images.device)).view(-1)  # (n, k) → (n·k,)

    def _offsets(self) -> torch.Tensor:
        """(n, 1): the live row of each live image's beam 0."""
        return torch.arange(len(self.live), device=self.live.device).unsqueeze(1) * self.k

    def _still_live(self) -> torch.Tensor | None:
        """Positions in the live set of the images not yet done; None when all of them are still searched."""
        live = self.live.tolist()
        keep = [j for j, image in enumerate(live) if not self.done[image]]
        return None if len(keep) == len(live) else torch.tensor(keep, device=self.live.device)

    def _compact(self, keep: torch.Tensor, scores, words, paths, chosen, index, memory: Memory) -> tuple:
        """Drop the done images' rows from every per-row tensor; `index` (parents) still points into the old rows."""
        rows = self._rows(keep)  # (n'·k,): the kept images' rows in the old live set
        self.live = self.live.index_select(0, keep)
        index = index.index_select(0, rows)
        return (scores.index_select(0, keep), words.index_select(0, rows), paths.index_select(0, rows),
                chosen.index_select(0, keep), index, memory.select(keep))

    def _first_step(self, memory: Memory, state: DecoderState) -> StepOutput:
        """<start> on one row per image (its k beams are all the same empty hypothesis), then copied to the k rows."""
        device = self.features.device
        out = self.decoder.step(torch.full((self.B,), START_ID, dtype=torch.long, device=device), state, memory)
        expand = torch.arange(self.B, device=device).repeat_interleave(self.k)  # (B·k,): image of every beam
        return StepOutput(out.logits.index_select(0, expand), out.alpha.index_select(0, expand), out.state.select(expand))

    def _candidates(self, scores: torch.Tensor, log_probs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The 2k best extensions per live image: total log p (n, 2k), parent beam (n, 2k) and word (n, 2k)."""
        n, k, V = scores.size(0), self.k, log_probs.size(-1)
        total = (scores.unsqueeze(-1) + log_probs.view(n, k, V)).view(n, k * V)  # (n, k, V) → (n, k·V)
        top, flat = total.topk(min(2 * k, k * V), dim=1)  # (n, 2k): enough to keep k alive after <end>s leave
        return top, flat // V, flat % V

    def _collect_finished(
        self, top: torch.Tensor, beams: torch.Tensor, chosen: torch.Tensor, words: torch.Tensor, paths: torch.Tensor,
        rows: torch.Tensor,
    ) -> None:
        """Candidates within the beam width (rank < k) that emit <end> join their image's finished list."""
        ends = (chosen == END_ID) & torch.isfinite(top)  # (n, 2k)
        ends[:, self.k :] = False
        live = self.live.tolist()  # no image in it is done yet: done images left the batch (`_compact`)
        for j, rank in ends.nonzero().tolist():
            beam = j * self.k + int(beams[j, rank])  # its live row
            score = self._normalise(float(top[j, rank]), words.size(1) + 1)
            path = paths[beam].tolist() + [int(rows[beam])]
            self.hypotheses[live[j]].append(_Hypothesis(score, words[beam].tolist(), path, True))

    def _survivors(self, top: torch.Tensor, beams: torch.Tensor, chosen: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The k best candidates that did not emit <end>, best first: scores, parent beams, words (n, k)."""
        alive = top.masked_fill(chosen == END_ID, float("-inf"))  # (n, 2k)
        scores, rank = alive.topk(self.k, dim=1)  # (n, k)
        return scores, beams.gather(1, rank), chosen.gather(1, rank)

    def _all_done(self, scores: torch.Tensor, length: int) -> bool:
        """An image is done once its best finished hypothesis beats anything its live beams could still reach."""
        reachable = self._best_reachable(scores.max(dim=1).values, length).tolist()  # (n,)
        for image, bound in zip(self.live.tolist(), reachable):
            hypotheses = self.hypotheses[image]
            if hypotheses:
                self.done[image] = max(hypotheses).score >= bound
        return all(self.done)

    def _best_reachable(self, log_p: torch.Tensor, length: int) -> torch.Tensor:
        """Upper bound on the normalised score of a live beam finishing at length (length, max_len]; log p only falls."""
        if length >= self.max_len:
            return torch.full_like(log_p, float("-inf"))
        final_length = self.max_len if self.length_penalty > 0 else length + 1
        return log_p / final_length**self.length_penalty

    def _normalise(self, log_p: float, length: int) -> float:
        return log_p / length**self.length_penalty

    def _result(self, scores: torch.Tensor, words: torch.Tensor, paths: torch.Tensor) -> Generation:
        position = {image: j for j, image in enumerate(self.live.tolist())}  # images never done are still live
        ranked = []
        for image, hypotheses in enumerate(self.hypotheses):
            if hypotheses:
                ranked.append(sorted(hypotheses, reverse=True)[: self.k])
            else:  # no <end> within max_len: the best partial hypothesis (survivors are sorted, beam 0 is best)
                j = position[image]
                score = self._normalise(float(scores[j, 0]), words.size(1))
                ranked.append([_Hypothesis(score, words[j * self.k].tolist(), paths[j * self.k].tolist(), False)])
        best = [hypotheses[0] for hypotheses in ranked]
        history = torch.stack(self.alphas)  # (T, B·k, L)
        steps = torch.arange(history.size(0), device=history.device)  # (T,)
        return Generation(
            [h.tokens for h in best],
            torch.tensor([h.score for h in best], device=self.features.device),
            [history[steps[: len(h.path)], h.path] for h in best],  # (T_i, L): its row's map at every step
            [h.finished for h in best],
            [[(h.tokens, h.score) for h in hypotheses] for hypotheses in ranked],
        )


# -- shared checks ------------------------------------------------------------------------------------------------
def _check_common(features: torch.Tensor, max_len: int) -> None:
    if features.dim() != 3:
        raise ValueError(f"features must be (B, L, C), got shape {tuple(features.shape)}")
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")


@contextmanager
def _eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode for the call (no dropout); the module's previous mode is restored afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
