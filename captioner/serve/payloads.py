"""The JSON the API returns: captions with per-word attention, answers with glimpses, the server's health."""

import numpy as np
from pydantic import BaseModel, Field

from captioner.inference import Caption
from captioner.serve.engine import DecodingOptions, Engine
from captioner.serve.settings import ServeSettings
from captioner.vqa_inference import Answer

DIGITS = 5  # attention weights are rounded: maps stay exact to the eye and the JSON stays small


class Beam(BaseModel):
    caption: str
    score: float = Field(description="length-normalised log-probability; higher is better")


class CaptionResponse(BaseModel):
    caption: str = Field(description="the best beam's caption")
    words: list[str] = Field(description="its words, in order")
    grid: list[int] = Field(description="[h, w]: the attention grid; every map has h·w weights, row by row")
    attention: list[list[float]] = Field(description="one map per word: h·w weights summing to 1")
    score: float = Field(description="the caption's length-normalised log-probability")
    beams: list[Beam] = Field(description="every final beam, best first")
    options: dict[str, int | bool] = Field(description="the decoding options used")
    model: dict = Field(description="the caption model: name, encoder, attention type, vocabulary size, device")


class Choice(BaseModel):
    answer: str
    probability: float


class AnswerResponse(BaseModel):
    answers: list[Choice] = Field(description="the top answers, most probable first")
    grid: list[int] = Field(description="[h, w]: the attention grid of the VQA model")
    glimpses: list[list[float]] = Field(description="one attention map (h·w weights) per glimpse")
    model: dict | None = Field(description="the VQA model: name, encoder, answers, glimpses, device")


def maps(alphas: np.ndarray) -> list[list[float]]:
    """(N, L) attention maps → N lists of L weights, row-major over the grid as `flatten(2)` orders it."""
    return np.round(np.asarray(alphas, dtype=np.float64), DIGITS).tolist()


def caption_payload(result: Caption, engine: Engine, settings: ServeSettings, options: DecodingOptions) -> dict:
    return {
        "caption": result.text,
        "words": result.words,
        "grid": list(engine.captioner.grid_size),
        "attention": maps(result.alphas[: len(result.words)]),  # one map per word (the <end> step's is left out)
        "score": round(float(result.score), 4),
        "beams": [{"caption": text, "score": round(float(score), 4)} for text, score in result.beams],
        "options": {"beam_size": options.beam_size, "no_repeat_ngram_size": options.no_repeat_ngram_size,
                    "no_repeat_content_words": options.no_repeat_content_words},
        "model": caption_model(engine, settings),
    }


def answer_payload(result: Answer, engine: Engine, settings: ServeSettings) -> dict:
    assert engine.answerer is not None
    return {
        "answers": [{"answer": answer, "probability": round(float(p), 4)} for answer, p in result.answers],
        "grid": list(engine.answerer.grid_size),
        "glimpses": maps(result.alphas),
        "model": vqa_model(engine, settings),
    }


def caption_model(engine: Engine, settings: ServeSettings) -> dict:
    captioner = engine.captioner
    return {
        "name": settings.caption_model,
        "encoder": _encoder(captioner.encoder.describe()),
        "attention": captioner.decoder.config.attention,
        "vocabulary": len(captioner.vocab),
        "device": str(captioner.device),
    }


def vqa_model(engine: Engine, settings: ServeSettings) -> dict | None:
    answerer = engine.answerer
    if answerer is None:
        return None
    return {
        "name": settings.vqa_model,
        "encoder": _encoder(answerer.encoder.describe()),
        "answers": len(answerer.answer_vocab),
        "glimpses": answerer.model.config.glimpses,
        "shares_caption_grids": engine.shared_encoder,
        "device": str(answerer.device),
    }


def health_payload(engine: Engine, workers, settings: ServeSettings) -> dict:
    """What the page needs to set itself up, and what the benchmark and tests read about batching."""
    return {
        "status": "ok",
        "caption_model": caption_model(engine, settings),
        "vqa_model": vqa_model(engine, settings),
        "limits": {"max_upload_mb": settings.max_upload_mb, "max_question_chars": settings.max_question_chars,
                   "max_beam": settings.max_beam, "max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms},
        "batches": {task: _stats(batcher.stats) for task, batcher in (("caption", workers.caption), ("ask", workers.ask))},
        "images_encoded": engine.images_encoded,
        "grid_cache": {"grids": len(engine.cache), "mb": round(engine.cache.bytes / 2**20, 2)},
    }


def _stats(stats) -> dict:
    return {"batches": stats.batches, "requests": stats.items, "largest": stats.largest}


def _encoder(description: dict) -> dict:
    keep = ("name", "image_size", "grid_size", "channels")
    return {key: description[key] for key in keep if key in description}
