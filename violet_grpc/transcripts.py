"""Transcript domain types, shared by engines, the proxy and storage.

Times are plain floats in seconds from the start of the audio (engines hand back numpy
floats, which protobuf and JSON refuse, so constructors here always cast).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    """One recognised word with its place in the audio."""

    text: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    """A stretch of recognised speech, usually a phrase or sentence."""

    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """The full result of transcribing some audio."""

    text: str
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...] = field(default_factory=tuple)


def join_segments(segments: tuple[Segment, ...] | list[Segment]) -> str:
    """Joins segment texts the way every Violet transcript spells its full text."""
    return " ".join(s.text.strip() for s in segments if s.text.strip())


def transcript_to_json(transcript: Transcript) -> dict[str, Any]:
    """A JSON-ready dict; the inverse of :func:`transcript_from_json`."""
    return {
        "text": transcript.text,
        "language": transcript.language,
        "language_probability": float(transcript.language_probability),
        "duration": float(transcript.duration),
        "segments": [
            {
                "text": s.text,
                "start": float(s.start),
                "end": float(s.end),
                "words": [[w.text, float(w.start), float(w.end), float(w.probability)] for w in s.words],
            }
            for s in transcript.segments
        ],
    }


def transcript_from_json(data: dict[str, Any]) -> Transcript:
    """Rebuilds a transcript stored by :func:`transcript_to_json`."""
    return Transcript(
        text=data["text"],
        language=data.get("language", ""),
        language_probability=float(data.get("language_probability", 0.0)),
        duration=float(data.get("duration", 0.0)),
        segments=tuple(
            Segment(
                text=s["text"],
                start=float(s["start"]),
                end=float(s["end"]),
                words=tuple(Word(w[0], float(w[1]), float(w[2]), float(w[3])) for w in s.get("words", [])),
            )
            for s in data.get("segments", [])
        ),
    )
