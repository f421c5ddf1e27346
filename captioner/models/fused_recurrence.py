"""The teacher-forced soft-attention LSTM loop with a hand-written backward pass through time.

Autograd would run the loop's backward step by step, computing and accumulating every weight gradient at every
step (small matrix multiplies plus a full-size accumulation each time) and zero-filling full-size buffers for
every slice of the shrinking batch. Here the backward keeps per-step work to what the recurrence needs
(gradients of h, c and the attention), writes the gradients of the pre-activations into packed buffers, and
computes each weight gradient once, as one large matrix multiply over all steps. `tests/test_caption_decoder.py`
checks it against the autograd loop.

Memory traffic, not arithmetic, is what the attention costs: its energies tanh(W_a a + W_q h) are (n, L, A) per
step, hundreds of MB over a batch at a 14×14 grid. They are not kept for the backward (freshly allocated blocks
that large are page-faulted in on every call, which cost more than the tanh): the backward recomputes them. On
CPU both passes make them a few captions at a time (`BLOCK_BYTES`, about L2) in one small buffer, and use each
block while it is in cache. Every per-step output is written in place into packed buffers: nothing is concatenated.

The captions of one image read one copy of its memory (`Readers`): the contexts of a step are one
(I, S, L) @ (I, L, D) product over the I images' S caption slots, not B separate products over B copies.

Shapes: B captions in length order, running[t] of them at step t (non-increasing), N = sum(running) real steps,
packed time-major (step 0's rows, then step 1's, …). I images (I = B without owners), D memory width, A attention
width, G gate width (0, 1 or D), H hidden size; the fused h-side pre-activation is [query (A); gate (G); gates (4H)].
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F

from captioner.models.attention import BLOCK_BYTES, tanh_


class Packed(NamedTuple):
    """What the forward keeps for the backward, every tensor packed time-major."""

    fused: torch.Tensor  # (N, A + G + 4H): h-side pre-activations (the query is recomputed from nothing else)
    alpha: torch.Tensor  # (N, L)
    context: torch.Tensor  # (N, D) ungated z_t
    gated: torch.Tensor  # (N, D) β_t · z_t (the output)
    acts: torch.Tensor  # (N, 4H) gate activations i, f, g, o
    c: torch.Tensor  # (N, H)
    tanh_c: torch.Tensor  # (N, H)
    h: torch.Tensor  # (N, H) (the output)


class Readers(NamedTuple):
    """Where each caption reads its image's memory: row owner·S + slot of an (I·S, ·) layout, S = the most
    captions of one image; without owners (one grid per caption) caption b reads memory[b] directly."""

    memory: torch.Tensor  # (I, L, D)
    flat: torch.Tensor | None  # (B,) owner·S + slot, captions in length order
    slots: int  # S

    @staticmethod
    def of(memory: torch.Tensor, owners: torch.Tensor | None) -> "Readers":
        if owners is None:
            return Readers(memory, None, 1)
        one_hot = F.one_hot(owners, memory.size(0))  # (B, I)
        slot = (one_hot.cumsum(0) * one_hot).sum(1) - 1  # (B,): how many of its image's captions come before it
        slots = int(slot.max()) + 1
        return Readers(memory, owners * slots + slot, slots)

    def context(self, alpha: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """z = α · memory into out: α (n, L) → (n, D)."""
        n, (I, L, D) = alpha.size(0), self.memory.shape
        if self.flat is None:
            return torch.bmm(alpha.unsqueeze(1), self.memory[:n], out=out.unsqueeze(1)).squeeze(1)  # (n, 1, L) @ (n, L, D)
        grouped = alpha.new_zeros(I * self.slots, L).index_copy_(0, self.flat[:n], alpha)  # (I·S, L)
        z = torch.bmm(grouped.view(I, self.slots, L), self.memory)  # (I, S, L) @ (I, L, D) → (I, S, D)
        return torch.index_select(z.view(I * self.slots, D), 0, self.flat[:n], out=out)  # (n, D)

    def scores(self, d_context: torch.Tensor) -> torch.Tensor:
        """memory · dz: the context's gradient back onto α, d_context (n, D) → (n, L)."""
        n, (I, L, D) = d_context.size(0), self.memory.shape
        if self.flat is None:
            return torch.bmm(self.memory[:n], d_context.unsqueeze(2)).squeeze(2)  # (n, L, D) @ (n, D, 1)
        grouped = d_context.new_zeros(I * self.slots, D).index_copy_(0, self.flat[:n], d_context)  # (I·S, D)
        back = torch.bmm(grouped.view(I, self.slots, D), self.memory.transpose(1, 2))  # (I, S, D) @ (I, D, L)
        return back.view(I * self.slots, L).index_select(0, self.flat[:n])  # (I, S, L) → (n, L)

    def memory_gradient(self, alpha: torch.Tensor, d_context: torch.Tensor, running: list[int]) -> torch.Tensor:
        """dL/d memory = Σ over its captions and steps of α ⊗ dz, one batched product per image: (I, L, D)."""
        (I, L, D), T, device = self.memory.shape, len(running), alpha.device
        captions = torch.cat([torch.arange(n, device=device) for n in running])  # (N,) caption of each packed row
        steps = torch.cat([torch.full((n,), t, device=device) for t, n in enumerate(running)])  # (N,)
        slot = captions if self.flat is None else self.flat[captions]  # (N,) its row in (I·S)
        index = slot * T + steps  # (N,) its row in (I·S·T)
        alphas = alpha.new_zeros(I * self.slots * T, L).index_copy_(0, index, alpha)  # (I·S·T, L)
        contexts = d_context.new_zeros(I * self.slots * T, D).index_copy_(0, index, d_context)  # (I·S·T, D)
        return torch.bmm(alphas.view(I, -1, L).transpose(1, 2), contexts.view(I, -1, D))  # (I, L, S·T) @ (I, S·T, D)


class SoftAttentionLSTM(torch.autograd.Function):
    """(word_gates (N, 4H), memory (I, L, D), projected (B, L, A), h0, c0 (B, H), h_weight (A+G+4H, H), h_bias,
    context_weight (4H, D), score_weight (A,), score_bias (1,), owners (B,) or None, running, G) → hidden states
    (N, H), gated contexts (N, D), attention (N, L), all packed time-major. `owners`: each caption's image (rows of
    memory), captions in length order; None: memory has one grid per caption (I = B)."""

    @staticmethod
    def forward(ctx, word_gates, memory, projected, h0, c0, h_weight, h_bias, context_weight, score_weight, score_bias,
                owners, running, gate_width):
        A, G, H, N = projected.size(-1), gate_width, h0.size(-1), word_gates.size(0)
        readers = Readers.of(memory, owners)
        new = word_gates.new_empty
        p = Packed(new(N, A + G + 4 * H), new(N, memory.size(1)), new(N, memory.size(2)), new(N, memory.size(2)),
                   new(N, 4 * H), new(N, H), new(N, H), new(N, H))
        energy = _block_buffer(projected)  # (rows of a block, L, A), reused by every block of every step
        h, c, offset = h0, c0, 0
        for n in running:
            rows = slice(offset, offset + n)
            fused = torch.addmm(h_bias, h[:n], h_weight.t(), out=p.fused[rows])  # (n, A + G + 4H): reads h_{t-1}
            alpha = torch.softmax(_scores(projected[:n], fused[:, :A], score_weight, energy) + score_bias, dim=-1)  # (n, L)
            p.alpha[rows] = alpha
            context = readers.context(alpha, p.context[rows])  # (n, D)
            gated = torch.mul(context, fused[:, A : A + G].sigmoid(), out=p.gated[rows]) if G else p.gated[rows].copy_(context)
            acts = torch.addmm(fused[:, A + G :] + word_gates[rows], gated, context_weight.t(), out=p.acts[rows])  # (n, 4H)
            h, c = _lstm_pointwise(acts, c[:n], p.c[rows], p.tanh_c[rows], p.h[rows], H)
            offset += n
        ctx.running, ctx.gate_width, ctx.memory_needs_grad = list(running), G, ctx.needs_input_grad[1]
        ctx.flat, ctx.slots = readers.flat, readers.slots
        ctx.save_for_backward(memory, projected, h0, c0, h_weight, context_weight, score_weight, *p)
        return p.h, p.gated, p.alpha

    @staticmethod
    def backward(ctx, grad_h, grad_z, grad_alpha):
        memory, projected, h0, c0, h_weight, context_weight, score_weight, *saved = ctx.saved_tensors
        p = Packed(*saved)
        G, running, readers = ctx.gate_width, ctx.running, Readers(memory, ctx.flat, ctx.slots)
        (B, L, A), H = projected.shape, h0.size(-1)
        grad_h, grad_z, grad_alpha = (torch.zeros_like(like) if g is None else g for g, like in
                                      ((grad_h, p.h), (grad_z, p.gated), (grad_alpha, p.alpha)))
        d_fused = torch.empty_like(p.fused)  # (N, A + G + 4H), filled step by step
        d_scores = torch.empty_like(p.alpha)  # (N, L)
        d_contexts = torch.empty_like(p.context) if ctx.memory_needs_grad else None  # (N, D)
        acc = _Accumulators(projected, A)
        dh, dc = h0.new_zeros(B, H), h0.new_zeros(B, H)  # carried: gradients of h_t, c_t
        ends = torch.tensor(running).cumsum(0).tolist()
        for t in reversed(range(len(running))):
            n, rows = running[t], slice(ends[t] - running[t], ends[t])
            c_prev = c0[:n] if t == 0 else p.c[ends[t - 1] - running[t - 1] :][:n]
            dc_t = _lstm_backward(p, rows, dh[:n] + grad_h[rows], dc[:n], c_prev, d_fused[rows, A + G :], H)
            d_context = _gate_backward(p, rows, d_fused[rows], grad_z[rows], context_weight, A, G)  # (n, D)
            if d_contexts is not None:
                d_contexts[rows] = d_context
            alpha = p.alpha[rows]
            d_alpha = grad_alpha[rows] + readers.scores(d_context)  # (n, L)
            d_score = torch.mul(alpha, d_alpha - (d_alpha * alpha).sum(1, keepdim=True), out=d_scores[rows])  # softmax'
            acc.step(projected[:n], p.fused[rows, :A], d_score, d_fused[rows, :A], score_weight)
            dh[:n] = d_fused[rows] @ h_weight  # (n, H): gradient of h_{t-1}
            dc[:n] = dc_t * p.acts[rows, H : 2 * H]  # through the forget gate
        h_prev = _previous(h0, p.h, running)  # (N, H)
        d_memory = readers.memory_gradient(p.alpha, d_contexts, running) if d_contexts is not None else None
        return (d_fused[:, A + G :], d_memory, acc.d_projected(score_weight), dh, dc, d_fused.t() @ h_prev,
                d_fused.sum(0), d_fused[:, A + G :].t() @ p.gated, acc.d_score_weight, d_scores.sum().view(1), None, None, None)


def _energy(projected: torch.Tensor, query: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """tanh(W_a a + W_q h) into `out`: projected (n, L, A), query (n, A) → (n, L, A)."""
    return tanh_(torch.add(projected, query.unsqueeze(1), out=out))


def _blocks(projected: torch.Tensor) -> list[tuple[int, int]]:
    """Row ranges of about BLOCK_BYTES of energies each (CPU); one range elsewhere (a GPU wants few, large kernels)."""
    n, L, A = projected.shape
    block = max(1, BLOCK_BYTES // (L * A * projected.element_size())) if projected.device.type == "cpu" else n
    return [(start, min(start + block, n)) for start in range(0, n, block)]


def _block_buffer(projected: torch.Tensor) -> torch.Tensor:
    _, stop = _blocks(projected)[0]
    return projected.new_empty(stop, *projected.shape[1:])  # (block rows, L, A)


def _scores(projected: torch.Tensor, query: torch.Tensor, score_weight: torch.Tensor, buffer: torch.Tensor) -> torch.Tensor:
    """w · tanh(W_a a + W_q h) without the bias, block by block: projected (n, L, A), query (n, A) → (n, L)."""
    n, L, A = projected.shape
    scores = projected.new_empty(n, L)
    for start, stop in _blocks(projected):
        e = _energy(projected[start:stop], query[start:stop], buffer[: stop - start])  # (b, L, A)
        torch.mv(e.view(-1, A), score_weight, out=scores[start:stop].view(-1))  # (b·L, A) @ (A,)
    return scores


def _lstm_pointwise(acts, c_prev, c_out, tanh_c_out, h_out, H) -> tuple[torch.Tensor, torch.Tensor]:
    """Gate pre-activations (n, 4H) → activations in place; c_t, tanh c_t and h_t into their packed rows."""
    acts[:, : 2 * H].sigmoid_()  # input and forget gates
    acts[:, 2 * H : 3 * H].tanh_()  # cell candidate
    acts[:, 3 * H :].sigmoid_()  # output gate
    i, f, g, o = acts.chunk(4, dim=1)
    c = torch.mul(f, c_prev, out=c_out).addcmul_(i, g)  # c_t = f·c_{t-1} + i·g
    return torch.mul(o, torch.tanh(c, out=tanh_c_out), out=h_out), c


def _lstm_backward(p: Packed, rows: slice, dh_t, dc_next, c_prev, d_gates, H) -> torch.Tensor:
    """Gradients of the gate pre-activations into d_gates (n, 4H); returns the gradient of c_t (n, H)."""
    i, f, g, o = p.acts[rows].chunk(4, dim=1)
    tanh_c = p.tanh_c[rows]
    dc_t = dc_next + dh_t * o * (1 - tanh_c * tanh_c)
    d_gates[:, :H] = dc_t * g * i * (1 - i)
    d_gates[:, H : 2 * H] = dc_t * c_prev * f * (1 - f)
    d_gates[:, 2 * H : 3 * H] = dc_t * i * (1 - g * g)
    d_gates[:, 3 * H :] = dh_t * tanh_c * o * (1 - o)
    return dc_t


def _gate_backward(p: Packed, rows: slice, d_fused, grad_z, context_weight, A, G) -> torch.Tensor:
    """Through acts = … + W_z (β·z): writes the gate's pre-activation gradient, returns dL/dz (n, D)."""
    d_gated = torch.addmm(grad_z, d_fused[:, A + G :], context_weight)  # (n, D)
    if not G:
        return d_gated
    beta = p.fused[rows, A : A + G].sigmoid()  # (n, G)
    d_beta = d_gated * p.context[rows]
    d_beta = d_beta.sum(1, keepdim=True) if G == 1 else d_beta
    d_fused[:, A : A + G] = d_beta * beta * (1 - beta)
    return d_gated * beta


class _Accumulators:
    """The attention's gradients, d_pre = d_score ⊗ w ⊙ (1 − e²) summed over steps without ever being formed:
    d_projected = w ⊙ (Σ_t d_score_t − Σ_t d_score_t ⊙ e_t²), d_query = w ⊙ (Σ_l d_score − Σ_l d_score ⊙ e²)."""

    def __init__(self, projected: torch.Tensor, A: int) -> None:
        self.energy = _block_buffer(projected)  # (block rows, L, A), reused by every block of every step
        self.score_sum = projected.new_zeros(projected.shape[:2])  # (B, L): Σ_t d_score_t
        self.squared = torch.zeros_like(projected)  # (B, L, A): Σ_t d_score_t ⊙ e_t²
        self.d_score_weight = projected.new_zeros(A)  # Σ d_score · e

    def step(self, projected, query, d_score, d_query_out, score_weight) -> None:
        n, L, A = projected.shape
        self.score_sum[:n] += d_score
        weighted = projected.new_empty(n, A)  # Σ_l d_score ⊙ e²
        for start, stop in _blocks(projected):
            rows, scores = slice(start, stop), d_score[start:stop]  # (b, L)
            e = _energy(projected[rows], query[rows], self.energy[: stop - start])  # recomputed: (b, L, A)
            self.d_score_weight.addmv_(e.view(-1, A).t(), scores.reshape(-1))  # (A, b·L) @ (b·L,)
            e.mul_(e)  # now e²
            self.squared[rows].addcmul_(scores.unsqueeze(2), e)
            torch.bmm(scores.unsqueeze(1), e, out=weighted[rows].unsqueeze(1))  # (b, 1, L) @ (b, L, A) → (b, 1, A)
        torch.mul(d_score.sum(1, keepdim=True) - weighted, score_weight, out=d_query_out)

    def d_projected(self, score_weight: torch.Tensor) -> torch.Tensor:
        return self.squared.neg_().add_(self.score_sum.unsqueeze(2)).mul_(score_weight)  # (B, L, A)


def _previous(first: torch.Tensor, packed: torch.Tensor, running: list[int]) -> torch.Tensor:
    """The state each packed step started from: first[:running[0]], then each step's rows cut to the next's n."""
    parts, offset = [first[: running[0]]], 0
    for n_prev, n in zip(running, running[1:]):
        parts.append(packed[offset : offset + n])
        offset += n_prev
    return torch.cat(parts)  # (N, H)
