"""`Captioner`: load a model file and caption images, returning words and the attention map of each word."""

import contextlib
import dataclasses
import functools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from captioner.checkpoint import encoder_from_payload, encoder_payload, half_state, load_model_file, load_state_checked, save_model_file
from captioner.config import EncoderConfig, build_section
from captioner.consensus import consensus_tokens
from captioner.data.image_files import ImageFiles, keep_readable
from captioner.data.images import ImageInput, as_image_list, as_rgb_image, input_size
from captioner.encoders import ImageEncoder, description_differences, encode_in_chunks
from captioner.errors import CaptionerError
from captioner.evaluation.cider import CiderD
from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
from captioner.models.decoders import build_decoder
from captioner.models.decoding import generate
from captioner.models.ensemble import EnsembleDecoder
from captioner.text import Vocabulary

SHIPPED_CHECKPOINT = Path(__file__).parent / "assets" / "captioner-coco-mini.pt"
NO_REPEAT_NGRAM_SIZE = 3  # captions never repeat a word trigram unless asked (see docs/RESULTS.md)
CONTENT_REPEAT_PENALTY = math.inf  # nor a content word ("bus … bus"; text/function_words.py, docs/RESULTS.md)


@dataclass
class Caption:
    text: str
    words: list[str]
    alphas: np.ndarray  # (T, L): one attention map per generated word (+ <end> when produced)
    score: float
    beams: list[tuple[str, float]] = field(default_factory=list)  # beam search: every final beam, best first


@dataclass
class CaptionedFile:
    """One image file of `Captioner.caption_iter`: its caption, or why it could not be read."""

    path: Path
    caption: Caption | None
    error: str | None = None


class Captioner:
    """Encoder + decoder + vocabulary, ready to caption. `Captioner.load()` with no path loads the shipped model.

    `consensus` (CIDEr-D with the training references' document frequencies, kept in model files that
    `captioner train` writes) lets `consensus=True` pick consensus captions (captioner.consensus)."""

    def __init__(self, encoder: ImageEncoder, decoder: CaptionDecoder | EnsembleDecoder, vocab: Vocabulary, encoder_config: EncoderConfig,
                 meta: dict | None = None, consensus: CiderD | None = None) -> None:
        self.encoder, self.decoder, self.vocab = encoder.eval(), decoder.eval(), vocab
        self.encoder_config = encoder_config
        self.meta = meta or {}
        self.consensus = consensus

    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.encoder.grid_size

    def to(self, device: str | torch.device) -> "Captioner":
        self.encoder.to(device)
        self.decoder.to(device)
        return self

    # -- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path, force: bool = False) -> Path:
        if isinstance(self.decoder, EnsembleDecoder):
            raise CaptionerError("an ensemble is not one model file: save its members, or average them (captioner average)")
        payload = {
            **encoder_payload(self.encoder, self.encoder_config),
            "decoder_config": dataclasses.asdict(self.decoder.config),
            "decoder_state": half_state(self.decoder.state_dict()),
            "vocab": self.vocab.itos,
            "meta": self.meta,
            **({"document_frequencies": self.consensus.to_table()} if self.consensus is not None else {}),
        }
        return save_model_file(path, "caption", payload, force=force)

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device = "cpu") -> "Captioner":
        path = Path(path) if path is not None else SHIPPED_CHECKPOINT
        payload = load_model_file(path, "caption")
        encoder, encoder_config = encoder_from_payload(payload, path)
        vocab = Vocabulary.from_dict({"itos": payload["vocab"]})
        decoder_config = build_section("checkpoint decoder", DecoderConfig, payload["decoder_config"])
        if decoder_config.vocab_size != len(vocab) or decoder_config.feature_dim != encoder.channels:
            raise_mismatch(path, decoder_config, len(vocab), encoder)
        decoder = build_decoder(decoder_config)
        load_state_checked(decoder, payload["decoder_state"], "decoder", path)
        table = payload.get("document_frequencies")
        consensus = CiderD.from_table(table) if table is not None else None
        return cls(encoder, decoder, vocab, encoder_config, payload.get("meta"), consensus).to(device)

    @classmethod
    def ensemble(cls, captioners: Sequence["Captioner"], names: Sequence[str | Path]) -> "Captioner":
        """Loaded models of one vocabulary and encoder as one ensemble (captioner.models.ensemble): the first one's
        encoder runs once per image, every decoder reads its grid, and their next-word probabilities are averaged.
        `names` (the model files) name a model that cannot join."""
        first, first_name = captioners[0], names[0]
        for other, name in zip(captioners[1:], names[1:]):
            if other.vocab.itos != first.vocab.itos:
                raise CaptionerError(f"{name} cannot join an ensemble with {first_name}: their vocabularies differ "
                                     f"({len(other.vocab)} vs {len(first.vocab)} words)")
            differ = description_differences(other.encoder.describe(), first.encoder.describe())
            if differ:
                raise CaptionerError(f"{name} cannot join an ensemble with {first_name}: their encoders differ "
                                     f"({'; '.join(differ[:3])})")
        decoder = EnsembleDecoder([captioner.decoder for captioner in captioners])
        meta = {"ensemble": [str(name) for name in names]}
        return cls(first.encoder, decoder, first.vocab, first.encoder_config, meta, first.consensus).to(first.device)

    def use_hard_inference(self, mode: str) -> "Captioner":
        """Hard-attention models: read the context at the most likely location (`argmax`, the default) or as the
        expected context over all locations (`expectation`, the paper's alternative)."""
        if isinstance(self.decoder, EnsembleDecoder):
            raise CaptionerError("set hard inference on each model before joining them into an ensemble")
        if self.decoder.config.attention != "hard":
            raise CaptionerError(f"hard inference '{mode}' applies to hard-attention models; this one uses soft attention")
        try:
            self.decoder.config = dataclasses.replace(self.decoder.config, hard_inference=mode)  # validated there
        except ValueError as e:
            raise CaptionerError(str(e)) from None
        return self

    # -- captioning ----------------------------------------------------------------------------------------
    def caption(
        self,
        images: ImageInput | Sequence[ImageInput],
        beam_size: int = 3,
        max_len: int = 20,
        batch_size: int = 16,
        no_repeat_ngram_size: int = NO_REPEAT_NGRAM_SIZE,
        consensus: bool = False,
        content_repeat_penalty: float = CONTENT_REPEAT_PENALTY,
    ) -> list[Caption]:
        """Caption images: paths, PIL images, numpy arrays (H, W, 3) uint8 or tensors (3, H, W), uint8 or float in
        [0, 1]; one image alone gives a list of one. beam_size=1 is greedy decoding; no_repeat_ngram_size=0 allows
        repeated n-grams; content_repeat_penalty is the log-probability a content word already in the caption
        loses (inf: never repeated; 0 allows repeats); consensus=True picks consensus captions instead (beam_size
        is then unused). An unreadable image raises CaptionerError naming it (`caption_iter` reports it and goes on)."""
        images = as_image_list(images)
        results: list[Caption] = []
        for start in range(0, len(images), batch_size):
            grid = self.encode_images(images[start : start + batch_size], first=start)  # (b, L, C)
            results += self.caption_features(grid, beam_size, max_len, no_repeat_ngram_size, consensus, content_repeat_penalty)
        return results

    def caption_iter(
        self,
        paths: Iterable[str | Path],
        batch_size: int = 16,
        beam_size: int = 3,
        max_len: int = 20,
        no_repeat_ngram_size: int = NO_REPEAT_NGRAM_SIZE,
        num_workers: int = 0,
        consensus: bool = False,
        content_repeat_penalty: float = CONTENT_REPEAT_PENALTY,
        overlap: bool | None = None,
        lanes: int | None = None,
    ) -> Iterator[CaptionedFile]:
        """Caption image files, yielding each result in input order as soon as its batch is done.

        With `overlap` three stages overlap, each a bounded queue ahead of the next: decoding (DataLoader worker
        processes, or with num_workers=0 a background thread), the encoder, and caption search. With `lanes` = n
        > 1 (and no workers), whole batches go to n threads in turn, each decoding, encoding and searching its
        batch with 1/n of torch's threads (`stages.in_lanes`). Otherwise the stages take turns in this thread
        (decoding still in worker processes when num_workers > 0). None (the defaults): overlap on a GPU and on a
        CPU with cores to spare beyond torch's threads (`stages.overlap_pays`); else two lanes where torch's
        threads fill two or more cores (`stages.lanes_pay`). Memory holds a few batches, however many paths.
        Unreadable files are yielded with `error` set, in their place. `paths` may be any iterable (a glob, a
        generator: its paths are listed first) or one path.
        """
        from torch.utils.data import DataLoader

        from captioner.stages import in_background, in_lanes, lanes_pay, map_in_background, overlap_pays

        paths = [paths] if isinstance(paths, (str, Path)) else paths if isinstance(paths, Sequence) else list(paths)
        files = ImageFiles(paths, self.encoder.transform)
        loader = DataLoader(files, batch_size=batch_size, num_workers=num_workers, collate_fn=keep_readable,
                            pin_memory=self.device.type == "cuda")
        options = (beam_size, max_len, no_repeat_ngram_size, consensus, content_repeat_penalty)
        if overlap is None:
            overlap = overlap_pays(self.device)
        if lanes is None:
            lanes = 1 if overlap or num_workers else lanes_pay(self.device)
        if lanes > 1:
            batches = [list(range(start, min(start + batch_size, len(paths)))) for start in range(0, len(paths), batch_size)]

            def caption_rows(rows: list[int]) -> list:  # one batch as the loader would give it, encoded and searched
                return self._caption_batch(self._encode_batch(keep_readable(files.__getitems__(rows))), *options)

            decoded = in_lanes(caption_rows, batches, lanes)
        elif overlap:
            batches = in_background(iter(loader), depth=2, name="captioner-decode")  # workers start here, in this thread
            encoded = map_in_background(self._encode_batch, batches, depth=1, name="captioner-encode")
            decoded = map_in_background(lambda batch: self._caption_batch(batch, *options), encoded, name="captioner-search")
        else:
            decoded = (self._caption_batch(self._encode_batch(batch), *options) for batch in loader)
        for results in decoded:
            for index, caption, error in results:
                yield CaptionedFile(Path(paths[index]), caption, error)

    def _encode_batch(self, batch: tuple) -> tuple:
        rows, pixels, errors = batch
        return rows, self.encode(pixels) if pixels is not None else None, errors

    def _caption_batch(self, batch: tuple, *options) -> list[tuple[int, Caption | None, str | None]]:
        """(rows, features (b, L, C) or None, [(row, reason)]) → [(row, caption or None, reason or None)] in row order."""
        rows, features, errors = batch
        captions = self.caption_features(features, *options) if features is not None else []
        done = [(i, c, None) for i, c in zip(rows, captions)] + [(i, None, reason) for i, reason in errors]
        return sorted(done, key=lambda item: item[0])

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised images (B, 3, S, S) → grid features (B, L, C); bfloat16 autocast on CUDA; on a CPU in chunks of
        a few images, which is faster there than one large batch (`encode_in_chunks`)."""
        with self._autocast():
            return encode_in_chunks(self.encoder, pixels.to(self.device, non_blocking=True))

    def encode_images(self, images: Sequence[ImageInput], first: int = 0) -> torch.Tensor:
        """Images (any form `caption` takes) → grid features (B, L, C): what caption_features reads, and what a VQA
        answerer with the same encoder reads too (captioner.pipeline). Errors name image `first + k`."""
        transform = self.encoder.transform
        size = input_size(transform)
        pixels = torch.stack([transform(as_rgb_image(image, first + k, size)) for k, image in enumerate(images)])  # (B, 3, S, S)
        return self.encode(pixels)

    @torch.no_grad()
    def caption_features(
        self, features: torch.Tensor, beam_size: int = 3, max_len: int = 20, no_repeat_ngram_size: int = NO_REPEAT_NGRAM_SIZE,
        consensus: bool = False, content_repeat_penalty: float = CONTENT_REPEAT_PENALTY,
    ) -> list[Caption]:
        """Grid features (B, L, C) → captions (skips the encoder; used with feature caches)."""
        repeats = {"no_repeat_ngram_size": no_repeat_ngram_size, "word_repeat_penalty": self.word_penalty(content_repeat_penalty)}
        if consensus:
            return self._consensus_captions(features.to(self.device).float(), max_len, repeats)
        strategy = {"strategy": "beam", "beam_size": beam_size} if beam_size > 1 else {"strategy": "greedy"}
        with self._autocast():
            out = generate(self.decoder, features.to(self.device).float(), max_len=max_len, **repeats, **strategy)
        beams = out.beams or [[(tokens, score)] for tokens, score in zip(out.tokens, out.scores.tolist())]
        captions = []
        for tokens, score, alphas, ranked in zip(out.tokens, out.scores.tolist(), out.alphas, beams):
            words = self.vocab.decode_tokens(tokens)
            texts = [(" ".join(self.vocab.decode_tokens(t)), s) for t, s in ranked]
            captions.append(Caption(" ".join(words), words, alphas.float().cpu().numpy(), score, texts))
        return captions

    def word_penalty(self, content_penalty: float) -> torch.Tensor | None:
        """(V,): the log-probability each word loses once it is in the caption: `content_penalty` for content
        words, 0 for function words and specials; None when the penalty is 0."""
        if content_penalty < 0:
            raise CaptionerError(f"content_repeat_penalty must be 0 or more, got {content_penalty}")
        if content_penalty == 0:
            return None
        return torch.where(self._content_words.to(self.device), content_penalty, 0.0)  # (V,)

    @functools.cached_property
    def _content_words(self) -> torch.Tensor:
        """(V,) bool: which words are content words; made once, not per captioned batch."""
        return torch.tensor(self.vocab.content_words())

    def _consensus_captions(self, features: torch.Tensor, max_len: int, repeats: dict) -> list[Caption]:
        """Consensus captions of features (B, L, C), each with its words' attention maps and its length-normalised
        log-probability, from one teacher-forced pass over the chosen captions."""
        if self.consensus is None:
            raise CaptionerError("consensus captions need the training captions' statistics, which this model file "
                                 "lacks (files written by `captioner train` carry them)")
        with self._autocast():
            chosen = consensus_tokens(self.decoder, features, self.vocab, self.consensus, max_len, **repeats)
            rows = [torch.tensor([Vocabulary.start_id, *t, *([Vocabulary.end_id] if f else [])]) for t, f in chosen]
            captions = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True).to(self.device)  # (B, T+1)
            log_probs, alphas = self.decoder.score_captions(features, captions)  # (B, T), (B, T, L)
        results = []
        for (tokens, _), row, maps, steps in zip(chosen, log_probs, alphas, (captions[:, 1:] != 0).sum(1).tolist()):
            words = self.vocab.decode_tokens(tokens)
            score = float(row.sum()) / max(steps, 1)  # normalised as beam search ranks: per word, <end> included
            results.append(Caption(" ".join(words), words, maps[:steps].float().cpu().numpy(), score, [(" ".join(words), score)]))
        return results

    def _autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 mixed precision on CUDA; nothing changes on CPU (or MPS)."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def raise_mismatch(path: Path, config: DecoderConfig, vocab_size: int, encoder: ImageEncoder) -> None:
    raise CaptionerError(
        f"{path}: inconsistent checkpoint: decoder expects vocabulary {config.vocab_size} / features {config.feature_dim}, "
        f"file has vocabulary {vocab_size} and encoder {encoder.name} gives {encoder.channels} channels"
    )
