"""The common tutorial design of the same decoder, kept only as a speed baseline.

It runs the *same* `CaptionDecoder` weights the way the most-read Show-Attend-Tell tutorial does: sort the
batch by length, shrink the batch at every step to the captions still running, recompute the encoder-side
attention projection `W_a a_i` at every step, and apply the output layer step by step. The arithmetic is the
same as `CaptionDecoder.forward` (soft attention), so the two can be timed against each other fairly.
"""

import torch

from captioner.models.caption_decoder import CaptionDecoder, DecoderState, Memory


def tutorial_forward(decoder: CaptionDecoder, features: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """features (B, L, C), captions (B, T+1), lengths (B,) incl. <start>/<end> → logits (B, T, V) in sorted order, sort index."""
    decode_lengths, order = (lengths - 1).sort(descending=True)
    features, captions = features[order], captions[order]
    _, state = decoder.prepare(features)
    embedded = decoder.embedding(captions[:, :-1])  # (B, T, E)
    B, T = captions.size(0), int(decode_lengths[0])
    logits = features.new_zeros(B, T, decoder.config.vocab_size)
    for t in range(T):
        bt = int((decode_lengths > t).sum())  # captions still running at step t
        state_t = DecoderState(state.h[:, :bt], state.c[:, :bt])
        memory = Memory(features[:bt], decoder.attention.project(features[:bt]))  # recomputed every step
        _, context, _, _ = decoder._attend(memory, state_t, "expect")
        new = decoder._recur(torch.cat([embedded[:bt, t], context], dim=-1), state_t)
        logits[:bt, t] = decoder._logits(embedded[:bt, t], new.h[-1], context)
        state = DecoderState(torch.cat([new.h, state.h[:, bt:]], 1), torch.cat([new.c, state.c[:, bt:]], 1))
    return logits, order
