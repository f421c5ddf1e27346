"""Show, Attend and Tell decoder (Xu et al. 2015): an LSTM that attends over the image grid at every word.

Speed comes from doing each piece of work once, in the largest matrix multiply it fits in (see `StepWeights`):
the grid (optionally projected to a smaller memory) and its attention projection once per image; the word
embeddings' share of the first layer's gates once for all steps; everything that reads h_{t-1} (attention query,
gate β, the top layer's recurrent gates) as one matrix multiply per step; the output layer once over the real
(non-padded) steps only.
"""

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from captioner.models.attention import AdditiveAttention, expected_context, located_context, sample_locations
from captioner.models.cells import CELLS, STEPS
from captioner.models.fused_recurrence import SoftAttentionLSTM

NEVER_GENERATED = (0, 1, 3)  # <pad>, <start>, <unk>: masked out of generation steps (a caption never says "<unk>")
ARCHITECTURES = ("show_attend_tell", "up_down")  # the decoders of captioner.models.decoders.DECODERS
GATE_WIDTH = {"scalar": lambda channels: 1, "vector": lambda channels: channels}


@dataclass
class DecoderConfig:
    """Hyper-parameters; the paper's choice is the default wherever it is clear."""

    architecture: str = "show_attend_tell"  # show_attend_tell (Xu et al. 2015) | up_down (Anderson et al. 2018)
    vocab_size: int = 0  # filled in from the vocabulary
    feature_dim: int = 0  # filled in from the encoder (C)
    embed_dim: int = 256
    hidden_dim: int = 512
    attention_dim: int = 256
    memory_dim: int | None = None  # project the grid C → memory_dim once per image (self-critical.pytorch's att_embed)
    num_layers: int = 1  # show_attend_tell; up_down always has its two LSTMs
    cell: str = "lstm"  # lstm | gru
    dropout: float = 0.5
    attention: str = "soft"  # soft | hard
    attention_activation: str = "tanh"  # the paper's; tutorials use relu
    gate: str | None = "scalar"  # β_t = σ(f_β(h_{t-1})): scalar (paper), vector (tutorials) or None; show_attend_tell only
    deep_output: bool = True  # L_o(E y_{t-1} + L_h h_t + L_z z_t) instead of a linear layer on h_t
    alpha_c: float = 1.0  # λ of the doubly stochastic penalty
    penalty_reduction: str = "sum"  # over locations: sum (authors' code) or mean
    attention_supervision: float = 0.0  # λ of the grounding loss on words whose category has boxes (Liu et al. 2017)
    attention_supervision_loss: str = "mass"  # mass: −log Σ_i α_i·m_i | cross_entropy: to the normalised box map
    # hard attention (REINFORCE), as in the authors' code
    expectation_prob: float = 0.5  # per minibatch, use the expected context instead of a sample
    baseline_decay: float = 0.9
    reinforce_weight: float = 1.0
    entropy_weight: float = 0.002
    hard_inference: str = "argmax"  # argmax | expectation

    # fields that shape only the training loss, not the network: model files that differ in them still average
    TRAINING_ONLY: ClassVar[tuple[str, ...]] = (
        "dropout", "alpha_c", "penalty_reduction", "attention_supervision", "attention_supervision_loss",
        "expectation_prob", "baseline_decay", "reinforce_weight", "entropy_weight",
    )

    def __post_init__(self) -> None:
        choices = {"architecture": ARCHITECTURES, "cell": CELLS, "attention": ("soft", "hard"), "gate": (*GATE_WIDTH, None),
                   "penalty_reduction": ("sum", "mean"), "hard_inference": ("argmax", "expectation"),
                   "attention_supervision_loss": ("mass", "cross_entropy")}
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"decoder {field} must be one of {list(allowed)}, got {getattr(self, field)!r}")
        for field in ("embed_dim", "hidden_dim", "attention_dim", "num_layers"):
            if getattr(self, field) < 1:
                raise ValueError(f"decoder {field} must be positive, got {getattr(self, field)}")
        if self.architecture == "up_down" and self.num_layers != 1:
            raise ValueError(f"decoder num_layers applies to show_attend_tell; up_down has its two LSTMs, got {self.num_layers}")
        if self.attention_supervision < 0:
            raise ValueError(f"decoder attention_supervision must be 0 or more, got {self.attention_supervision}")
        if self.memory_dim is not None and self.memory_dim < 1:
            raise ValueError(f"decoder memory_dim must be positive or null, got {self.memory_dim}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"decoder dropout must be in [0, 1), got {self.dropout}")


class DecoderState(NamedTuple):
    h: torch.Tensor  # (N layers, B, H)
    c: torch.Tensor  # (N layers, B, H); unused by GRU cells

    def select(self, index: torch.Tensor) -> "DecoderState":
        """Reorder/expand the batch (beam search): index (B',) → state with batch B'."""
        return DecoderState(self.h.index_select(1, index), self.c.index_select(1, index))

    def head(self, n: int) -> "DecoderState":
        """The first n rows (the captions still running, in length order)."""
        return DecoderState(self.h[:, :n], self.c[:, :n])


class StepWeights(NamedTuple):
    """Weights of one decode call, fused once so that each step does few, large matrix multiplies."""

    h_side: torch.Tensor  # (A + G + gates, H): attention query, gate β and the top layer's recurrent gates, from h_{t-1}
    h_bias: torch.Tensor  # (A + G + gates,)
    word_side: torch.Tensor  # (gates, E): the embedding's share of the first layer's input gates
    word_bias: torch.Tensor  # (gates,)
    context_side: torch.Tensor  # (gates, D): the context's share of the first layer's input gates
    splits: tuple[int, int, int]  # (A, G, gates)


class Memory(NamedTuple):
    """What the decoder reads from the image at every step, computed once per image (and the call's weights)."""

    features: torch.Tensor  # (B, L, D): contexts are read from here (the projected grid when memory_dim is set)
    projected: torch.Tensor  # (B, L, A): the attention's feature-side projection
    weights: tuple  # the decoder's fused per-step weights (StepWeights; UpDownWeights for Up-Down)
    pooled: torch.Tensor | None = None  # (B, gates): the mean memory's share of a first layer's gates (Up-Down)

    def select(self, index: torch.Tensor) -> "Memory":
        pooled = self.pooled.index_select(0, index) if self.pooled is not None else None
        return Memory(self.features.index_select(0, index), self.projected.index_select(0, index), self.weights, pooled)

    def head(self, n: int) -> "Memory":
        return Memory(self.features[:n], self.projected[:n], self.weights, None if self.pooled is None else self.pooled[:n])


class StepOutput(NamedTuple):
    logits: torch.Tensor  # (B, V)
    alpha: torch.Tensor  # (B, L)
    state: DecoderState


@dataclass
class DecoderOutput:
    """Teacher-forced outputs. Only real steps are computed: they are `packed` time-major (step 0's captions,
    then step 1's, …), and `rows`/`steps` say where each packed row sits in the (B, T) caption grid."""

    packed_logits: torch.Tensor  # (N, V), N = real target words in the batch
    rows: torch.Tensor  # (N,) caption of each packed row
    steps: torch.Tensor  # (N,) time step of each packed row
    alphas: torch.Tensor  # (B, T, L), zero at padded steps
    location_log_probs: torch.Tensor | None = None  # (B, T): log α_t(s_t) of sampled locations (hard attention)
    entropy: torch.Tensor | None = None  # (B, T): H(α_t) (hard attention)

    @property
    def logits(self) -> torch.Tensor:
        """(B, T, V) predictions for captions[:, 1:], zero at padded steps (for inspection; losses use `packed_logits`)."""
        B, T = self.alphas.shape[:2]
        padded = self.packed_logits.new_zeros(B, T, self.packed_logits.size(-1))
        return padded.index_put((self.rows, self.steps), self.packed_logits)


class CaptionDecoder(nn.Module):
    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        if config.vocab_size < 5 or config.feature_dim < 1:
            raise ValueError("DecoderConfig needs vocab_size (from the vocabulary) and feature_dim (from the encoder)")
        self.config = cfg = config
        C, H, E = cfg.feature_dim, cfg.hidden_dim, cfg.embed_dim
        D = cfg.memory_dim or C
        self.memory_proj = nn.Sequential(nn.Linear(C, D), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout)) if cfg.memory_dim else None
        self.embedding = nn.Embedding(cfg.vocab_size, E, padding_idx=0)
        self._build_recurrence(cfg, D)
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.deep_output:
            self.out_h = nn.Linear(H, E)
            self.out_z = nn.Linear(D, E)
        self.out = nn.Linear(E if cfg.deep_output else H, cfg.vocab_size)
        self.register_buffer("reward_baseline", torch.zeros(()))  # hard attention's moving average
        self._step_cell = STEPS[cfg.cell]

    def _build_recurrence(self, cfg: DecoderConfig, D: int) -> None:
        """The initial state, the attention and the recurrent cells (what another architecture replaces)."""
        C, H, E = cfg.feature_dim, cfg.hidden_dim, cfg.embed_dim
        self.init_h = nn.Linear(C, cfg.num_layers * H)
        self.init_c = nn.Linear(C, cfg.num_layers * H)
        self.attention = AdditiveAttention(D, H, cfg.attention_dim, activation=cfg.attention_activation)
        self.gate = nn.Linear(H, GATE_WIDTH[cfg.gate](D)) if cfg.gate else None
        cell = CELLS[cfg.cell]
        self.cells = nn.ModuleList(cell(E + D if i == 0 else H, H) for i in range(cfg.num_layers))

    # -- once per call ---------------------------------------------------------------------------------------------
    def step_weights(self) -> StepWeights:
        """Fuse the per-step weights (cheap: a few concatenations, once per decode call, differentiable)."""
        top, first = self.cells[-1], self.cells[0]
        E = self.config.embed_dim
        query = self.attention.query_proj.weight  # (A, H)
        parts = [query] + ([self.gate.weight] if self.gate is not None else []) + [top.weight_hh]
        biases = [query.new_zeros(query.size(0))] + ([self.gate.bias] if self.gate is not None else []) + [top.bias_hh]
        splits = (query.size(0), self.gate.out_features if self.gate is not None else 0, top.weight_hh.size(0))
        return StepWeights(torch.cat(parts), torch.cat(biases), first.weight_ih[:, :E], first.bias_ih,
                           first.weight_ih[:, E:], splits)

    def project_memory(self, features: torch.Tensor) -> torch.Tensor:
        """The grid the decoder reads: features (B, L, C) → (B, L, D), projected once per image when memory_dim is set."""
        return self.memory_proj(features) if self.memory_proj is not None else features

    def prepare(self, features: torch.Tensor) -> tuple[Memory, DecoderState]:
        """features (B, L, C) → per-image memory and the initial state from the mean feature."""
        mean = features.mean(dim=1)  # (B, C)
        B, N, H = features.size(0), self.config.num_layers, self.config.hidden_dim
        h = torch.tanh(self.init_h(mean)).view(B, N, H).transpose(0, 1).contiguous()  # (B, N·H) → (N, B, H)
        c = torch.tanh(self.init_c(mean)).view(B, N, H).transpose(0, 1).contiguous()  # (B, N·H) → (N, B, H)
        memory = self.project_memory(features)  # (B, L, D)
        return Memory(memory, self.attention.project(memory), self.step_weights()), DecoderState(h, c)

    # -- one step --------------------------------------------------------------------------------------------------
    def _advance(self, word_gates: torch.Tensor, state: DecoderState, memory: Memory, mode: str) -> tuple[torch.Tensor, ...]:
        """word_gates (n, gates) = the embedding's share of layer 0's gates → α, context z_t, new state, log α_s, H(α)."""
        w = memory.weights
        A, G, _ = w.splits
        h_top = state.h[-1]  # (n, H)
        fused = F.linear(h_top, w.h_side, w.h_bias)  # (n, A + G + gates): everything that reads h_{t-1}
        query, gate, top_gates = fused.split(list(w.splits), dim=1)
        alpha = self.attention.weights(memory.projected, query)  # (n, L)
        context, log_prob, entropy = self._read(memory.features, alpha, mode)
        if G:
            context = torch.sigmoid(gate) * context  # β_t · z_t
        inputs = word_gates + F.linear(context, w.context_side)  # (n, gates): layer 0's input side
        state = self._recur(inputs, state, top_gates)
        return alpha, context, state, log_prob, entropy

    def _read(self, features: torch.Tensor, alpha: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
        """Context by `mode`: expect | sample | argmax. Returns z (n, D), log α_s and H(α) (sampling only)."""
        if mode == "expect":
            return expected_context(features, alpha), None, None
        if mode == "sample":
            locations, log_prob, entropy = sample_locations(alpha)
            return located_context(features, locations), log_prob, entropy
        return located_context(features, alpha.argmax(dim=-1)), None, None

    def _recur(self, input_gates: torch.Tensor, state: DecoderState, top_gates: torch.Tensor) -> DecoderState:
        """Run the layers; layer 0's input gates and the top layer's recurrent gates are given precomputed."""
        hs, cs = [], []
        last = len(self.cells) - 1
        for layer, cell in enumerate(self.cells):
            if layer > 0:
                input_gates = F.linear(self.dropout(hs[-1]), cell.weight_ih, cell.bias_ih)  # (n, gates)
            hidden_gates = top_gates if layer == last else F.linear(state.h[layer], cell.weight_hh, cell.bias_hh)
            h, c = self._step_cell(input_gates, hidden_gates, state.h[layer], state.c[layer])
            hs.append(h)
            cs.append(c)
        return DecoderState(torch.stack(hs), torch.stack(cs))

    def _logits(self, embedded: torch.Tensor, h: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Deep output L_o(tanh(E y_{t-1} + L_h h_t + L_z z_t)), on any number of leading dimensions."""
        if not self.config.deep_output:
            return self.out(self.dropout(h))
        return self.out(self.dropout(torch.tanh(embedded + self.out_h(h) + self.out_z(context))))

    def word_gates(self, embedded: torch.Tensor, weights: StepWeights) -> torch.Tensor:
        """(…, E) embeddings → (…, gates): their share of layer 0's input gates, biases included."""
        return F.linear(embedded, weights.word_side, weights.word_bias)

    def inference_mode_for_context(self) -> str:
        if self.config.attention == "soft" or self.config.hard_inference == "expectation":
            return "expect"
        return "argmax"

    # -- public API ------------------------------------------------------------------------------------------------
    def step(self, tokens: torch.Tensor, state: DecoderState, memory: Memory, mode: str | None = None) -> StepOutput:
        """One generation step: previous tokens (B,) → next-word logits (B, V), α (B, L), new state.

        The state may hold g rows per image of the memory (B = g·I, image-major: rows i·g … i·g + g − 1 read
        image i), as beam search and SCST sampling run them, so each image's grid is neither copied nor read g times.
        `mode` picks how hard attention reads the context (default: the inference mode); soft attention always expects.
        """
        embedded = self.embedding(tokens)  # (B, E)
        mode = mode or self.inference_mode_for_context()
        alpha, context, state, _, _ = self._advance(self.word_gates(embedded, memory.weights), state, memory, mode)
        logits = self._logits(embedded, state.h[-1], context)
        logits[:, list(NEVER_GENERATED)] = float("-inf")  # (B, V)
        return StepOutput(logits, alpha, state)

    def score_captions(
        self, features: torch.Tensor, captions: torch.Tensor, owners: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log p of each word of given captions (R, T+1) = <start> … [<end>] <pad>… under the generation policy (the
        words generation never emits are out of the softmax), and the attention map of each: (R, T), (R, T, L), zero
        at padded steps. One teacher-forced pass; features and owners as in `forward`."""
        output = self(features, captions, owners=owners)
        logits = output.packed_logits.index_fill(1, self._never_generated(), float("-inf"))  # (N, V)
        targets = captions[:, 1:]  # (R, T)
        picked = logits.log_softmax(-1).gather(1, targets[output.rows, output.steps].unsqueeze(1)).squeeze(1)  # (N,)
        return picked.new_zeros(targets.shape).index_put((output.rows, output.steps), picked), output.alphas

    def _never_generated(self) -> torch.Tensor:
        return torch.tensor(NEVER_GENERATED, device=self.out.weight.device)

    def forward(
        self, features: torch.Tensor, captions: torch.Tensor, sample_prob: float = 0.0, owners: torch.Tensor | None = None
    ) -> DecoderOutput:
        """Teacher forcing. captions (B, T+1) = <start> w_1 … <end> <pad>… → outputs for captions[:, 1:]; features
        (B, L, C), one grid per caption, or (I, L, C), one per image, with `owners` (B,) the image of each caption.

        Given `owners`, each image's memory is computed once and shared by its captions. The batch is ordered by
        caption length once; step t then runs only the captions still running, a prefix of that order, so padded
        steps cost nothing. With `sample_prob` > 0 (scheduled sampling, Bengio et al. 2015) each caption's input
        word at step t ≥ 1 is, with that probability, sampled from its own step t−1 prediction.
        """
        lengths = (captions[:, 1:] != 0).sum(dim=1)  # (B,) words to predict per caption (<pad> = 0)
        lengths, order = lengths.sort(descending=True)
        if owners is None:
            memory, state = self.prepare(features[order])
        else:
            memory, state = self.prepare(features)  # per image
            owners = owners[order]  # (B,) image of each caption, in length order
            state = state.select(owners)  # (N layers, B, H); the memory stays per image where the loop can read it so
        inputs = captions[order, :-1]  # (B, T)
        B, T = inputs.shape
        running = (lengths.unsqueeze(0) > torch.arange(T, device=lengths.device).unsqueeze(1)).sum(1).tolist()  # (T,)
        running = [n for n in running if n > 0]
        mode = self._training_context_mode()
        if sample_prob > 0 and self.training:
            per_caption = memory.select(owners) if owners is not None else memory
            steps = self._scheduled_sampling_loop(inputs, running, per_caption, state, mode, sample_prob)
        else:
            steps = self._teacher_forced_loop(inputs, running, memory, state, owners, mode)
        return self._output(steps, order, running, B, T)

    def _teacher_forced_loop(self, inputs, running, memory, state, owners, mode) -> dict[str, torch.Tensor | None]:
        """Packed time-major outputs of every real step: h (N, H), context (N, D), alpha (N, L), logits (N, V)."""
        tokens = torch.cat([inputs[:n, t] for t, n in enumerate(running)])  # (N,) input words, packed time-major
        embedded = self.embedding(tokens)  # (N, E)
        word_gates = self.word_gates(embedded, memory.weights)  # (N, gates): one matrix multiply for all steps
        if self._fused_loop_applies(mode):
            steps = self._fused_loop(word_gates, running, memory, state, owners)
        else:
            per_caption = memory.select(owners) if owners is not None else memory
            steps = self._autograd_loop(word_gates.split(running), running, per_caption, state, mode)
        steps["logits"] = self._logits(embedded, steps.pop("h"), steps.pop("context"))  # (N, V)
        return steps

    def _fused_loop_applies(self, mode: str) -> bool:
        """The hand-written backward covers the paper's configuration: one LSTM layer, soft tanh attention."""
        cfg = self.config
        return mode == "expect" and cfg.cell == "lstm" and cfg.num_layers == 1 and cfg.attention_activation == "tanh"

    def _fused_loop(self, word_gates, running, memory, state, owners) -> dict[str, torch.Tensor | None]:
        """The memory per image (owners given) or per caption; the attention projection per caption, as each
        caption's step adds its own query to it."""
        w, score = memory.weights, self.attention.score
        projected = memory.projected.index_select(0, owners) if owners is not None else memory.projected  # (B, L, A)
        tensors = (word_gates, memory.features, projected, state.h[0], state.c[0], w.h_side, w.h_bias,
                   w.context_side, score.weight[0], score.bias[:1])
        dtype = torch.float64 if word_gates.dtype == torch.float64 else torch.float32  # under autocast: float32
        with torch.autocast(word_gates.device.type, enabled=False):
            h, context, alpha = SoftAttentionLSTM.apply(*(t.to(dtype) for t in tensors), owners, running, w.splits[1])
        return {"h": h, "context": context, "alpha": alpha, "log_prob": None, "entropy": None}

    def _autograd_loop(self, word_gates, running, memory, state, mode) -> dict[str, torch.Tensor | None]:
        steps: dict[str, list] = {k: [] for k in ("h", "context", "alpha", "log_prob", "entropy")}
        for t, n in enumerate(running):
            memory, state = memory.head(n), state.head(n)
            alpha, context, state, log_prob, entropy = self._advance(word_gates[t], state, memory, mode)
            for key, value in zip(steps, (state.h[-1], context, alpha, log_prob, entropy)):
                steps[key].append(value)
        return {k: torch.cat(v) if v[0] is not None else None for k, v in steps.items()}

    def _scheduled_sampling_loop(self, inputs, running, memory, state, mode, sample_prob) -> dict[str, torch.Tensor | None]:
        steps: dict[str, list] = {k: [] for k in ("logits", "alpha", "log_prob", "entropy")}
        for t, n in enumerate(running):
            memory, state = memory.head(n), state.head(n)
            tokens = inputs[:n, t]
            if t > 0:  # replace some input words by the model's own (sampled, no gradient through the choice)
                previous = steps["logits"][-1][:n].detach().index_fill(1, self._never_generated(), float("-inf"))  # (n, V)
                own = torch.multinomial(previous.softmax(-1), 1).squeeze(1)  # (n,)
                tokens = torch.where(torch.rand(n, device=tokens.device) < sample_prob, own, tokens)
            embedded = self.embedding(tokens)  # (n, E)
            alpha, context, state, log_prob, entropy = self._advance(self.word_gates(embedded, memory.weights), state, memory, mode)
            for key, value in zip(steps, (self._logits(embedded, state.h[-1], context), alpha, log_prob, entropy)):
                steps[key].append(value)
        return {k: torch.cat(v) if v[0] is not None else None for k, v in steps.items()}

    def _output(self, steps: dict[str, torch.Tensor | None], order: torch.Tensor, running: list[int], B: int, T: int) -> DecoderOutput:
        """Packed time-major outputs, placed back in the caller's caption order."""
        device = order.device
        rows = order[torch.cat([torch.arange(n, device=device) for n in running])]  # (N,) caption in the caller's order
        times = torch.cat([torch.full((n,), t, device=device) for t, n in enumerate(running)])  # (N,)
        alphas = steps["alpha"]  # (N, L)
        padded = alphas.new_zeros(B, T, alphas.size(-1)).index_put((rows, times), alphas)  # (B, T, L)
        extras = {}
        if steps["log_prob"] is not None:
            for key, name in (("log_prob", "location_log_probs"), ("entropy", "entropy")):
                extras[name] = alphas.new_zeros(B, T).index_put((rows, times), steps[key])  # (B, T)
        return DecoderOutput(steps["logits"], rows, times, padded, **extras)

    def _training_context_mode(self) -> str:
        """Hard attention while training: one coin per minibatch picks a sample (p = 1 − expectation_prob)."""
        if self.config.attention == "soft":
            return "expect"
        if not self.training:
            return self.inference_mode_for_context()
        return "expect" if torch.rand(()).item() < self.config.expectation_prob else "sample"
