"""Choosing the consensus answer among several miners' answers to the same task.

Transcripts: the medoid by pairwise word error rate (the answer closest to all others), so
one bad or lazy miner cannot win against two good ones. Audio: the medoid by duration, the
cheapest signal that separates speech of the right text from silence or noise. Documents:
the medoid by text similarity. Every miner's agreement (1 − mean distance to the others, or
1 for a lone answer) is stored for the validators.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jiwer

from violet_grpc.tasks import Task, TaskResult, TaskType
from violet_grpc.text_normalize import normalize_text
from violet_grpc.transcripts import transcript_from_json


@dataclass(frozen=True)
class Answer:
    """One miner's answer as the aggregator sees it."""

    miner_id: str
    response: dict[str, Any]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER on normalised text (lower case, no punctuation); 0 for two empty texts."""
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))


def medoid(items: Sequence[Any], distance: Callable[[Any, Any], float]) -> tuple[int, list[float]]:
    """Index of the item with the smallest total distance to the others, and each item's
    agreement (1 − mean distance to the others, clipped to 0..1)."""
    n = len(items)
    if n == 1:
        return 0, [1.0]
    totals = [0.0] * n
    for i in range(n):
        for j in range(i + 1, n):
            d = min(1.0, max(0.0, distance(items[i], items[j])))
            totals[i] += d
            totals[j] += d
    best = min(range(n), key=lambda i: (totals[i], i))
    return best, [1.0 - totals[i] / (n - 1) for i in range(n)]


def _transcript_distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    ta, tb = a["transcript"]["text"], b["transcript"]["text"]
    return (word_error_rate(ta, tb) + word_error_rate(tb, ta)) / 2


def _duration_distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    da, db = float(a.get("duration", 0)), float(b.get("duration", 0))
    return abs(da - db) / max(da, db, 1e-6)


def _text_distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    return 1.0 - difflib.SequenceMatcher(None, a.get("text", ""), b.get("text", "")).ratio()


def aggregate(task: Task, answers: Sequence[Answer]) -> TaskResult:
    """The consensus result of a task from its miners' answers (at least one)."""
    if not answers:
        raise ValueError("aggregate needs at least one answer")
    responses = [a.response for a in answers]
    if task.type in (TaskType.TRANSCRIPTION, TaskType.VIDEO_TRANSCRIPTION, TaskType.STREAMING_TRANSCRIPTION):
        best, agreements = medoid(responses, _transcript_distance)
        chosen = responses[best]
        return TaskResult(
            result_file_id=chosen.get("file_id", ""),
            result_content_type=chosen.get("content_type", "application/json"),
            transcript=transcript_from_json(chosen["transcript"]),
            agreements={a.miner_id: agreements[i] for i, a in enumerate(answers)},
        )
    distance = _duration_distance if task.type == TaskType.SPEECH_SYNTHESIS else _text_distance
    best, agreements = medoid(responses, distance)
    chosen = responses[best]
    return TaskResult(
        result_file_id=chosen["file_id"],
        result_content_type=chosen.get("content_type", ""),
        agreements={a.miner_id: agreements[i] for i, a in enumerate(answers)},
    )
