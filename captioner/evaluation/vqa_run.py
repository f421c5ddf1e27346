"""Answering a VQA split from a feature cache and scoring it, beside the most-frequent-answer baseline."""

import time
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from captioner.data.features import FeatureCache
from captioner.data.vqa import VQAItem
from captioner.evaluation.vqa_accuracy import VQAScores, vqa_accuracy
from captioner.vqa_inference import Answer, VQAAnswerer


def answer_cached(answerer: VQAAnswerer, items: Sequence[VQAItem], cache: FeatureCache, batch_size: int = 256) -> list[Answer]:
    """The answerer's top answer to every item, reading each image's grid from the cache (checked against its encoder)."""
    cache.check_compatible(answerer.encoder.describe())
    answers: list[Answer] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        rows = {image_id: r for r, image_id in enumerate(dict.fromkeys(item.image_id for item in chunk))}  # each image once
        features = torch.from_numpy(np.stack([cache[image_id] for image_id in rows]))  # (N, L, C) float16
        index = torch.tensor([rows[item.image_id] for item in chunk])  # (B,)
        answers += answerer.ask_features(features, [item.question for item in chunk], top_k=1, strict=False, image_index=index)
    return answers


def scores_row(scores: VQAScores) -> dict:
    return {"overall": scores.overall, "per_answer_type": scores.per_answer_type, "per_question_type": scores.per_question_type,
            "questions": scores.n}


def evaluate_cached(answerer: VQAAnswerer, items: Sequence[VQAItem], cache: FeatureCache) -> tuple[dict, list[Answer]]:
    """Official accuracy (overall, per answer type, per question type) and answering speed from the cache."""
    start = time.perf_counter()
    answers = answer_cached(answerer, items, cache)
    seconds = time.perf_counter() - start
    scores = vqa_accuracy({i.question_id: a.answers[0][0] for i, a in zip(items, answers)}, [i.annotation for i in items])
    return {**scores_row(scores), "answer_seconds": round(seconds, 2), "questions_per_s": round(len(items) / seconds)}, answers


def most_frequent_answer(train: Sequence[VQAItem], val: Sequence[VQAItem]) -> dict:
    """The baseline answering each question with its question type's most frequent training answer."""
    counts: dict[str, Counter] = {}
    for item in train:
        counts.setdefault(item.annotation["question_type"], Counter())[item.annotation["multiple_choice_answer"]] += 1
    best = {kind: counter.most_common(1)[0][0] for kind, counter in counts.items()}
    fallback = Counter(i.annotation["multiple_choice_answer"] for i in train).most_common(1)[0][0]
    predictions = {i.question_id: best.get(i.annotation["question_type"], fallback) for i in val}
    scores = vqa_accuracy(predictions, [i.annotation for i in val])
    return {**scores_row(scores), "answers": best, "type_questions": dict(Counter(i.annotation["question_type"] for i in val))}


def markdown_table(table: dict[str, dict], label: str, by_size: bool = False) -> str:
    """One row per question type (with its number of questions), then overall; one column per model of `table`,
    the most-frequent-answer baseline first. Types in name order, or largest first with by_size."""
    names = ["most frequent answer", *[n for n in table if n != "most frequent answer"]]
    sizes = table["most frequent answer"]["type_questions"]
    kinds = sorted(sizes, key=lambda k: (-sizes[k], k) if by_size else k)
    lines = [f"| {label} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for kind in kinds:
        lines.append(f"| {kind} ({sizes[kind]}) | " + " | ".join(f"{table[n]['per_question_type'][kind]:.1f}" for n in names) + " |")
    lines.append("| **overall** | " + " | ".join(f"**{table[n]['overall']:.1f}**" for n in names) + " |")
    return "\n".join(lines)
