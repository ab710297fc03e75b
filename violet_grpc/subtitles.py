"""Rendering transcripts as text, JSON, SRT and WebVTT (CLI output and the OpenAI API)."""
from __future__ import annotations

import json

from violet_grpc.transcripts import Transcript, transcript_to_json

FORMATS = ("text", "json", "srt", "vtt", "verbose_json")


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(transcript: Transcript) -> str:
    """SubRip: numbered cues with comma-separated milliseconds."""
    cues = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(transcript.segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(transcript: Transcript) -> str:
    """WebVTT: a header, then cues with dot-separated milliseconds."""
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n" for s in transcript.segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def render(transcript: Transcript, fmt: str) -> str:
    """The transcript in one of :data:`FORMATS` (``json`` is Violet's full transcript)."""
    if fmt == "text":
        return transcript.text.strip() + "\n"
    if fmt == "srt":
        return to_srt(transcript)
    if fmt == "vtt":
        return to_vtt(transcript)
    if fmt in ("json", "verbose_json"):
        return json.dumps(transcript_to_json(transcript), ensure_ascii=False, indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
