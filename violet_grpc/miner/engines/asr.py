"""Speech-recognition domain types and the engine Protocols the miner serves.

These types are the only thing the gRPC edge and the engines share: servicers convert wire
messages to and from them, engines (faster-whisper today, others later) produce them. They are
plain frozen dataclasses so they can be compared in tests, hashed, and passed between threads
without copying. Every time is a Python ``float`` in seconds from the start of the audio (or of
the stream), never a numpy scalar, because protobuf rejects ``numpy.float64``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np

#: The only sample rate engines accept; callers resample at the edge (PyAV).
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Word:
    """One recognised word with its position in the audio.

    Attributes:
        text: The word as the model wrote it (may carry punctuation, no leading space).
        start: Start time in seconds.
        end: End time in seconds.
        probability: The model's confidence in the word, 0..1.
    """

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of recognised speech (a sentence or a final streaming result).

    Attributes:
        text: The segment text, stripped of surrounding whitespace.
        start: Start time in seconds.
        end: End time in seconds.
        words: Per-word timing; empty when word timestamps were not requested.
    """

    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """The result of transcribing a whole file.

    Attributes:
        text: All segment texts joined by single spaces.
        language: ISO 639-1 code of the spoken (or requested) language.
        language_probability: Confidence of language detection (1.0 when it was given).
        duration: Length of the input audio in seconds.
        segments: The segments in time order.
    """

    text: str
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class TranscribeOptions:
    """How to transcribe a whole file.

    Attributes:
        language: ISO 639-1 code, or ``None`` to detect it.
        word_timestamps: Whether segments carry per-word timing.
        initial_prompt: Text that conditions the model (style, spelling of names).
        hotwords: Phrases the model should favour (faster-whisper's ``hotwords``).
        beam_size: Beam width; 1 is greedy (fastest), 5 is the accuracy default.
    """

    language: str | None = None
    word_timestamps: bool = True
    initial_prompt: str | None = None
    hotwords: str | None = None
    beam_size: int = 5


@dataclass(frozen=True)
class StreamOptions:
    """How to transcribe a live stream.

    Attributes:
        language: ISO 639-1 code, or ``None`` to detect it once early in the stream.
        interim_results: Whether to emit :class:`Interim` hypotheses between finals.
        word_timestamps: Whether final segments carry per-word timing.
        initial_prompt: Text that conditions the model (style, spelling of names).
        hotwords: Phrases the model should favour.
        endpoint_silence_ms: Silence that ends an utterance and finalizes its text.
        step_ms: How much new audio triggers another decode of the current utterance.
    """

    language: str | None = None
    interim_results: bool = True
    word_timestamps: bool = True
    initial_prompt: str | None = None
    hotwords: str | None = None
    endpoint_silence_ms: int = 300
    step_ms: int = 500


@dataclass(frozen=True)
class Interim:
    """A hypothesis for the current utterance that may still change.

    The interims returned by one :meth:`StreamSession.accept` call together form the current
    hypothesis, in order: first the words two consecutive decodes agreed on (high stability),
    then the still-tentative tail (low stability). Concatenate their texts to show it.

    Attributes:
        text: The hypothesis text.
        stability: How unlikely the text is to change, 0..1.
        start: Start time in seconds from the start of the stream.
        end: End time in seconds from the start of the stream.
    """

    text: str
    stability: float
    start: float
    end: float


@dataclass(frozen=True)
class Final:
    """Final text for part of an utterance; it is never revised later.

    Attributes:
        segment: The text with its timing (words in absolute stream time).
        utterance_index: Which utterance (0-based, counted by endpoints) it belongs to; a long
            utterance may produce several finals with the same index.
    """

    segment: Segment
    utterance_index: int


@dataclass(frozen=True)
class UtteranceEnd:
    """Endpointing fired: the speaker paused for at least ``endpoint_silence_ms``.

    Attributes:
        time: Stream time in seconds at which the pause was confirmed.
        utterance_index: The utterance that ended.
    """

    time: float
    utterance_index: int


StreamEvent: TypeAlias = Interim | Final | UtteranceEnd


@runtime_checkable
class StreamSession(Protocol):
    """One live transcription stream; not thread-safe, owned by one caller."""

    def accept(self, pcm: np.ndarray) -> list[StreamEvent]:
        """Add audio and return whatever became known.

        Args:
            pcm: float32 mono 16 kHz samples, any length (coalesced chunks are fine).

        Returns:
            New events in order; empty when no decode step was due.

        Raises:
            InvalidArgument: If the samples are not a 1-D float array.
        """
        ...

    def finish(self) -> list[StreamEvent]:
        """Declare the end of audio and finalize everything still pending."""
        ...

    @property
    def language(self) -> str:
        """Language of the stream (ISO 639-1); empty until detected."""
        ...

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio accepted so far."""
        ...


@runtime_checkable
class AsrEngine(Protocol):
    """A speech-recognition backend the miner can serve."""

    name: str
    device: str

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        """Transcribe a whole recording (float32 mono 16 kHz)."""
        ...

    def open_stream(self, options: StreamOptions) -> StreamSession:
        """Start a live stream with the given options."""
        ...

    def languages(self) -> tuple[str, ...]:
        """ISO 639-1 codes this engine can recognise."""
        ...
