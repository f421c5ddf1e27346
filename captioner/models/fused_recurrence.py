"""The teacher-forced soft-attention LSTM loop with a hand-written backward pass through time.

Autograd would run the loop's backward step by step, computing and accumulating every weight gradient at every
step (small matrix multiplies plus a full-size accumulation each time) and zero-filling full-size buffers for
every slice of the shrinking batch. Here the backward keeps per-step work to what the recurrence needs
(gradients of h, c and the attention), writes the gradients of the pre-activations into packed buffers, and
computes each weight gradient once, as one large matrix multiply over all steps. `tests/test_caption_decoder.py`
checks it against the autograd loop.

Shapes: B captions in length order, running[t] of them at step t (non-increasing), N = sum(running) real steps,
packed time-major (step 0's rows, then step 1's, …). D memory width, A attention width, G gate width (0, 1 or D),
H hidden size; the fused h-side pre-activation is [query (A); gate (G); recurrent gates (4H)].
"""

import torch

SAVED = ("h_prev", "c_prev", "energy", "alpha", "context", "beta", "acts", "c", "gated")


class SoftAttentionLSTM(torch.autograd.Function):
    """(word_gates (N, 4H), memory (B, L, D), projected (B, L, A), h0, c0 (B, H), h_weight (A+G+4H, H), h_bias,
    context_weight (4H, D), score_weight (A,), score_bias (1,), running, G) → hidden states (N, H),
    gated contexts (N, D), attention (N, L), all packed time-major."""

    @staticmethod
    def forward(ctx, word_gates, memory, projected, h0, c0, h_weight, h_bias, context_weight, score_weight, score_bias, running, gate_width):
        A, G, H = projected.size(-1), gate_width, h0.size(-1)
        saved: dict[str, list] = {k: [] for k in SAVED}
        h, c, offset = h0, c0, 0
        for n in running:
            h_prev, c_prev = h[:n], c[:n]  # the running captions are a prefix of the previous step's
            fused = torch.addmm(h_bias, h_prev, h_weight.t())  # (n, A + G + 4H): everything that reads h_{t-1}
            query, gate, hidden_gates = fused.split([A, G, 4 * H], dim=1)
            energy = (projected[:n] + query.unsqueeze(1)).tanh_()  # (n, L, A)
            alpha = (torch.matmul(energy, score_weight) + score_bias).softmax(dim=-1)  # (n, L)
            context = torch.bmm(alpha.unsqueeze(1), memory[:n]).squeeze(1)  # (n, 1, L) @ (n, L, D) → (n, D)
            beta = torch.sigmoid(gate) if G else None
            gated = context * beta if G else context
            acts = torch.addmm(hidden_gates + word_gates[offset : offset + n], gated, context_weight.t())  # (n, 4H)
            acts[:, : 2 * H].sigmoid_()  # input and forget gates
            acts[:, 2 * H : 3 * H].tanh_()  # cell candidate
            acts[:, 3 * H :].sigmoid_()  # output gate
            i, f, g, o = acts.chunk(4, dim=1)
            c = f * c_prev + i * g
            h = o * torch.tanh(c)
            for key, value in zip(SAVED, (h_prev, c_prev, energy, alpha, context, beta, acts, c, gated)):
                saved[key].append(value)
            saved.setdefault("h", []).append(h)
            offset += n
        packed = {k: torch.cat(v) if v[0] is not None else torch.empty(0) for k, v in saved.items()}
        ctx.running, ctx.gate_width = list(running), G
        ctx.save_for_backward(memory, projected, h_weight, context_weight, score_weight, *(packed[k] for k in SAVED))
        return packed["h"], packed["gated"], packed["alpha"]

    @staticmethod
    def backward(ctx, grad_h, grad_z, grad_alpha):
        memory, projected, h_weight, context_weight, score_weight, *rest = ctx.saved_tensors
        s = dict(zip(SAVED, rest))
        G, running = ctx.gate_width, ctx.running
        B, A, H = projected.size(0), projected.size(-1), s["h_prev"].size(-1)
        grad_h, grad_z, grad_alpha = (_or_zeros(g, s[k]) for g, k in ((grad_h, "h_prev"), (grad_z, "gated"), (grad_alpha, "alpha")))
        d_memory = torch.zeros_like(memory) if ctx.needs_input_grad[1] else None
        d_projected = torch.zeros_like(projected)
        d_fused = s["h_prev"].new_empty(s["h_prev"].size(0), A + G + 4 * H)  # (N, A + G + 4H), filled step by step
        d_scores = torch.empty_like(s["alpha"])  # (N, L)
        dh, dc = s["h_prev"].new_zeros(B, H), s["h_prev"].new_zeros(B, H)  # carried: gradients of h_t, c_t
        ends = torch.tensor(running).cumsum(0).tolist()
        for n, end in zip(reversed(running), reversed(ends)):
            rows = slice(end - n, end)
            i, f, g, o = s["acts"][rows].chunk(4, dim=1)
            tanh_c = torch.tanh(s["c"][rows])
            dh_t = dh[:n] + grad_h[rows]
            dc_t = dc[:n] + dh_t * o * (1 - tanh_c * tanh_c)
            d_gates = d_fused[rows, A + G :]  # (n, 4H): gradients of the gate pre-activations, written in place
            d_gates[:, :H] = dc_t * g * i * (1 - i)
            d_gates[:, H : 2 * H] = dc_t * s["c_prev"][rows] * f * (1 - f)
            d_gates[:, 2 * H : 3 * H] = dc_t * i * (1 - g * g)
            d_gates[:, 3 * H :] = dh_t * tanh_c * o * (1 - o)
            d_gated = torch.addmm(grad_z[rows], d_gates, context_weight)  # (n, D)
            d_context = d_gated * s["beta"][rows] if G else d_gated
            if G:
                beta = s["beta"][rows]
                d_beta = d_gated * s["context"][rows]
                d_beta = d_beta.sum(1, keepdim=True) if G == 1 else d_beta
                d_fused[rows, A : A + G] = d_beta * beta * (1 - beta)
            alpha = s["alpha"][rows]
            d_alpha = grad_alpha[rows] + torch.bmm(memory[:n], d_context.unsqueeze(2)).squeeze(2)  # (n, L, D) @ (n, D, 1)
            if d_memory is not None:
                d_memory[:n].baddbmm_(alpha.unsqueeze(2), d_context.unsqueeze(1))  # += α ⊗ dz, (n, L, D)
            d_score = alpha * (d_alpha - (d_alpha * alpha).sum(1, keepdim=True))  # softmax backward, (n, L)
            d_scores[rows] = d_score
            energy = s["energy"][rows]  # (n, L, A)
            d_pre = d_score.unsqueeze(2) * score_weight * (1 - energy * energy)  # (n, L, A)
            d_projected[:n] += d_pre
            d_fused[rows, :A] = d_pre.sum(1)
            dh[:n] = d_fused[rows] @ h_weight  # (n, H): gradient of h_{t-1}
            dc[:n] = dc_t * f
        d_score_weight = d_scores.view(1, -1) @ s["energy"].view(-1, A)  # (1, N·L) @ (N·L, A)
        return (d_fused[:, A + G :], d_memory, d_projected, dh, dc, d_fused.t() @ s["h_prev"], d_fused.sum(0),
                d_fused[:, A + G :].t() @ s["gated"], d_score_weight.view(-1), d_scores.sum().view(1), None, None)


def _or_zeros(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad
