"""What every text-to-speech engine offers, and the text handling they share.

A miner may run Piper, Coqui or anything else; the servicer only sees :class:`TtsEngine`.
Engines synthesize sentence by sentence so the first audio leaves the miner while later
sentences are still being computed (the validators measure time-to-first-audio), which is
why sentence splitting lives here, once, rather than in each engine.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from violet_grpc.errors import InvalidArgument

__all__ = [
    "MAX_SPEED",
    "MAX_TEXT_CHARS",
    "MIN_SPEED",
    "AudioChunk",
    "SynthesisOptions",
    "TtsEngine",
    "Voice",
    "chunk_stream",
    "join_chunks",
    "split_sentences",
    "unknown_voice",
    "validate_text",
]

MIN_SPEED = 0.25
MAX_SPEED = 4.0
#: Noise scales above this produce noise rather than speech in every VITS-family model.
MAX_NOISE = 2.0
#: Default cap on one request's text: about five minutes of speech.
MAX_TEXT_CHARS = 5000
#: Sentences longer than this are cut at a comma (or a space) so that no single chunk
#: delays the stream by many seconds and models stay inside the lengths they were trained on.
MAX_SENTENCE_CHARS = 300


@dataclass(frozen=True)
class Voice:
    """One voice an engine can speak with.

    Attributes:
        voice_id: What clients pass as ``SynthesisOptions.voice`` (for Piper, the model
            file's stem such as ``"en_US-joe-medium"``).
        language: BCP-47-ish tag of the language it speaks (``"en_US"``).
        sample_rate: Rate of the audio it produces.
        engine: Name of the engine serving it (``"piper"``, ``"coqui"``).
        description: Free text for people choosing a voice.
    """

    voice_id: str
    language: str
    sample_rate: int
    engine: str
    description: str = ""


@dataclass(frozen=True)
class SynthesisOptions:
    """How to speak a text.

    Attributes:
        voice: A ``Voice.voice_id``; ``None`` picks the engine's default voice.
        speed: 1.0 is the voice's natural pace, 2.0 twice as fast (0.25 … 4.0).
        noise_scale: Variation in the generated audio (VITS ``noise_scale``); ``None``
            keeps the voice's own setting.
        noise_w: Variation in phoneme durations (VITS ``noise_w``); ``None`` keeps the
            voice's own setting.
        deterministic: Turn all sampling noise off, so the same text gives the same
            samples (tests and reproducible challenges); overrides the noise values.

    Raises:
        InvalidArgument: ``INVALID_SPEED`` or ``INVALID_NOISE`` for values out of range.
    """

    voice: str | None = None
    speed: float = 1.0
    noise_scale: float | None = None
    noise_w: float | None = None
    deterministic: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed) and MIN_SPEED <= self.speed <= MAX_SPEED):
            raise InvalidArgument(
                f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {self.speed}",
                reason="INVALID_SPEED",
                metadata={"field": "speed", "min": str(MIN_SPEED), "max": str(MAX_SPEED)},
            )
        for name in ("noise_scale", "noise_w"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 <= value <= MAX_NOISE):
                raise InvalidArgument(
                    f"{name} must be between 0 and {MAX_NOISE}, got {value}",
                    reason="INVALID_NOISE",
                    metadata={"field": name, "min": "0", "max": str(MAX_NOISE)},
                )


@dataclass(frozen=True)
class AudioChunk:
    """Audio for one sentence (or, from ``synthesize``, for the whole text).

    Attributes:
        samples: float32 mono samples in [-1, 1].
        sample_rate: Rate of ``samples``.
        text: The sentence these samples speak.
        index: Position of this chunk in the stream, from 0.
        is_last: Whether this is the final chunk of the stream.
    """

    samples: np.ndarray
    sample_rate: int
    text: str
    index: int
    is_last: bool

    @property
    def duration(self) -> float:
        """Seconds of audio in the chunk."""
        return self.samples.size / self.sample_rate


@runtime_checkable
class TtsEngine(Protocol):
    """A loaded text-to-speech backend; calls block, so servers run them in a thread."""

    #: Engine family, e.g. ``"piper"``.
    name: str
    #: Where it computes: ``"cpu"`` or ``"cuda"``.
    device: str

    def voices(self) -> tuple[Voice, ...]:
        """The voices this engine can speak with, the default first."""
        ...

    def synthesize_stream(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        """Yield audio sentence by sentence, so the first chunk comes before the rest is done.

        Raises:
            InvalidArgument: ``EMPTY_TEXT``, ``TEXT_TOO_LONG``, ``UNKNOWN_VOICE``.
        """
        ...

    def synthesize(self, text: str, options: SynthesisOptions) -> AudioChunk:
        """Synthesize the whole text as one chunk (``index`` 0, ``is_last`` true).

        Raises:
            InvalidArgument: ``EMPTY_TEXT``, ``TEXT_TOO_LONG``, ``UNKNOWN_VOICE``.
        """
        ...


# ------------------------------------------------------------------------ text checks


def validate_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Check a text before spending compute on it.

    Args:
        text: What the user asked to be spoken.
        max_chars: Longest text accepted, in characters.

    Returns:
        The text without leading and trailing whitespace.

    Raises:
        InvalidArgument: ``EMPTY_TEXT`` for nothing but whitespace, ``TEXT_TOO_LONG`` (with
            ``max_chars`` and ``length`` in the metadata) past the limit.
    """
    if not isinstance(text, str):
        raise InvalidArgument(f"text must be a string, got {type(text).__name__}",
                              reason="EMPTY_TEXT", metadata={"field": "text"})
    stripped = text.strip()
    if not stripped:
        raise InvalidArgument("the text is empty", reason="EMPTY_TEXT",
                              metadata={"field": "text"})
    if len(stripped) > max_chars:
        raise InvalidArgument(
            f"the text has {len(stripped)} characters; the limit is {max_chars}",
            reason="TEXT_TOO_LONG",
            metadata={"field": "text", "max_chars": str(max_chars),
                      "length": str(len(stripped))},
        )
    return stripped


def unknown_voice(requested: str, available: Iterable[str]) -> InvalidArgument:
    """The error for a voice this engine does not have, listing the ones it does."""
    names = sorted(available)
    return InvalidArgument(
        f"unknown voice {requested!r}; available: {', '.join(names)}",
        reason="UNKNOWN_VOICE",
        metadata={"field": "voice", "voice": requested, "available": ",".join(names)},
    )


def join_chunks(chunks: Iterable[AudioChunk], text: str, sample_rate: int) -> AudioChunk:
    """Concatenate a stream's chunks into the one chunk ``synthesize`` returns."""
    parts = [chunk.samples for chunk in chunks]
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return AudioChunk(samples=samples.astype(np.float32, copy=False), sample_rate=sample_rate,
                      text=text, index=0, is_last=True)


# ------------------------------------------------------------------ sentence splitting

#: Words that end in a period without ending the sentence when a capital follows them
#: ("Mr. Smith", "e.g. The", "Fig. 3"). Lower case, without the final period. Words that
#: usually *do* end sentences ("etc.", "Inc.") are deliberately absent.
_ABBREVIATIONS = frozenset(
    """mr mrs ms mx dr prof sr st mt rev hon gen col lt sgt capt cmdr adm gov pres sen rep
    fr msgr vs v cf e.g i.e viz al approx ca est no nos fig figs vol vols ch sec pp p art
    op ed eds dept univ jan feb mar apr jun jul aug sep sept oct nov dec a.m p.m"""
    .split()
)
#: A terminator run, closing quotes/brackets, then the space after it. CJK full stops
#: need no space.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)|[。！？]+[\"'”’」』）)]*")
_WORD_BEFORE = re.compile(r"(\S+)$")
_INITIALS = re.compile(r"^\(?(?:[A-Za-z]\.)*[A-Za-z]$")
_BULLET = re.compile(r"^\s*(?:[-*•·▪‣]|\d{1,3}[.)])\s+")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SOFT_CUT = re.compile(r"[,;:—–]\s|\s-\s")
_SPACES = re.compile(r"\s+")
_SPOKEN = re.compile(r"\w")


def split_sentences(text: str, *, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Split text into sentences for sentence-by-sentence synthesis.

    Handles abbreviations ("Mr.", "e.g."), initials ("J. F. Kennedy"), decimals ("3.14"),
    ellipses and quotes, blank-line paragraphs and bulleted lines; text that is only
    punctuation stays with the sentence before it. Sentences longer than ``max_chars``
    are cut at the last comma, semicolon, colon or dash before the limit, else at a space.

    Args:
        text: Any text.
        max_chars: Longest piece returned.

    Returns:
        Non-empty, whitespace-normalized pieces in order; ``[]`` for blank text.
    """
    sentences: list[str] = []
    for block in _blocks(text):
        for sentence in _sentences_in(block):
            if sentences and not _SPOKEN.search(sentence):
                sentences[-1] = f"{sentences[-1]} {sentence}"
            else:
                sentences.append(sentence)
    return [piece for sentence in sentences for piece in _cut_long(sentence, max_chars)]


def _blocks(text: str) -> Iterator[str]:
    """Paragraphs and bulleted lines, each with its inner line breaks turned into spaces.

    A single line break inside a paragraph is usually wrapping, not a pause, so it is
    joined; a blank line or a new bullet starts a new block.
    """
    for paragraph in _PARAGRAPH.split(text.replace("\r\n", "\n").replace("\r", "\n")):
        lines: list[str] = []
        for line in paragraph.split("\n"):
            if _BULLET.match(line) and lines:
                yield _SPACES.sub(" ", " ".join(lines)).strip()
                lines = []
            lines.append(line)
        block = _SPACES.sub(" ", " ".join(lines)).strip()
        if block:
            yield block


def _sentences_in(block: str) -> Iterator[str]:
    start = 0
    for match in _BOUNDARY.finditer(block):
        if _ends_sentence(block, start, match):
            piece = block[start : match.end()].strip()
            if piece:
                yield piece
            start = match.end()
    rest = block[start:].strip()
    if rest:
        yield rest


def _ends_sentence(block: str, start: int, match: re.Match[str]) -> bool:
    """Whether a terminator really ends the sentence, judged by the words around it."""
    following = block[match.end() :].lstrip()
    if following[:1].islower():
        return False
    terminator = match.group(0)
    if terminator.rstrip("\"'”’»)]") != ".":
        return True
    before = _WORD_BEFORE.search(block[start : match.start()])
    if before is None:
        return True
    word = before.group(1)
    if word == "I":  # the pronoun ends sentences far more often than it is an initial
        return True
    return word.lower().lstrip("(\"'“‘") not in _ABBREVIATIONS and not _INITIALS.match(word)


def _cut_long(sentence: str, max_chars: int) -> Iterator[str]:
    """Cut an over-long sentence at a clause boundary, falling back to a space, then a hard cut."""
    rest = sentence
    while len(rest) > max_chars:
        cut = _cut_point(rest, max_chars)
        yield rest[:cut].strip()
        rest = rest[cut:].strip()
    if rest:
        yield rest


def _cut_point(text: str, max_chars: int) -> int:
    window = text[: max_chars + 1]
    floor = max_chars // 3
    clauses = [m.start() + 1 for m in _SOFT_CUT.finditer(window) if m.start() + 1 >= floor]
    if clauses:
        return clauses[-1]
    space = window.rfind(" ", floor)
    return space if space > 0 else max_chars


def chunk_stream(
    sentences: Sequence[str], render: Callable[[str], np.ndarray], sample_rate: int
) -> Iterator[AudioChunk]:
    """Turn sentences into numbered chunks, marking the last, skipping silent middles.

    A sentence may render to no samples (a lone symbol the phonemizer drops); skipping it
    keeps clients from receiving empty messages, but the final chunk is always sent so the
    stream's end is explicit.
    """
    index = 0
    for position, sentence in enumerate(sentences):
        samples = render(sentence)
        is_last = position == len(sentences) - 1
        if samples.size == 0 and not is_last:
            continue
        yield AudioChunk(samples=samples, sample_rate=sample_rate, text=sentence,
                         index=index, is_last=is_last)
        index += 1
