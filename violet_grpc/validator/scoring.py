"""Scoring a round: quality from ground truth, speed from the validator's own clock, copies zeroed.

Nothing here takes a miner's word for anything: quality is the word error rate of the
answer against a reference the validator made (the sentence it synthesised, its own
translation, its own transcript of the miner's audio), latency is measured by the
validator around the call, and duplicates are found by comparing answers.

Score of one answer: ``quality × (FLOOR + (1 − FLOOR) × speed)`` where quality is
``1 − WER`` (clipped to 0..1) and speed is ``budget / (budget + latency)``: 1 for an
instant answer, ½ at the budget, falling off smoothly so a slow but correct miner still
beats a fast wrong one.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from violet_grpc.proxy.aggregator import word_error_rate
from violet_grpc.text_normalize import normalize_text

#: Share of an answer's score that correctness earns however slow it is.
QUALITY_FLOOR = 0.5
#: Word timings closer than this (seconds) count as the same timing.
TIMING_TOLERANCE = 0.02
#: Audio durations closer than this (seconds) count as the same audio.
DURATION_TOLERANCE = 0.01


def quality(reference: str, hypothesis: str) -> float:
    """1 − WER on normalised text, clipped to 0..1."""
    return max(0.0, 1.0 - word_error_rate(reference, hypothesis))


def speed(latency: float, budget: float) -> float:
    """``budget / (budget + latency)``: 1 when instant, ½ at the budget."""
    if budget <= 0:
        return 1.0
    return budget / (budget + max(0.0, latency))


def answer_score(answer_quality: float, latency: float, budget: float) -> float:
    """The score of one correct-to-``answer_quality`` answer that took ``latency`` seconds."""
    return max(0.0, min(1.0, answer_quality)) * (QUALITY_FLOOR + (1 - QUALITY_FLOOR) * speed(latency, budget))


@dataclass(frozen=True)
class Fingerprint:
    """What makes two answers "the same answer" for copy detection.

    Attributes:
        text: Normalised text of the answer (a transcript, or the validator's transcript
            of a miner's audio).
        timings: Word (or segment) boundaries in seconds; for audio, its duration.
        digest: sha256 of the raw answer bytes, when there are any (audio).
    """

    text: str = ""
    timings: tuple[float, ...] = ()
    digest: str = ""

    def same_as(self, other: Fingerprint) -> bool:
        """Identical bytes, or the same text with the same timings (within tolerance)."""
        if self.digest and self.digest == other.digest:
            return True
        if not self.text or self.text != other.text or not self.timings:
            return False
        if len(self.timings) != len(other.timings):
            return False
        return all(abs(a - b) <= TIMING_TOLERANCE for a, b in zip(self.timings, other.timings))


def transcript_fingerprint(text: str, timings: Iterable[float]) -> Fingerprint:
    """The fingerprint of a transcript with its word/segment timings."""
    return Fingerprint(text=normalize_text(text), timings=tuple(float(t) for t in timings))


def text_fingerprint(text: str) -> Fingerprint:
    """The fingerprint of a plain-text answer to input unique to its miner (a translation)."""
    normalized = normalize_text(text)
    return Fingerprint(digest=hashlib.sha256(normalized.encode()).hexdigest() if normalized else "")


def audio_fingerprint(audio: bytes, heard: str, duration: float) -> Fingerprint:
    """The fingerprint of synthesised audio: its bytes, and what it says for how long."""
    return Fingerprint(text=normalize_text(heard), timings=(round(duration / DURATION_TOLERANCE) * DURATION_TOLERANCE,)
                       if duration > 0 else (), digest=hashlib.sha256(audio).hexdigest() if audio else "")


@dataclass(frozen=True)
class Outcome:
    """One miner's answer to one challenge, as the validator measured it.

    Attributes:
        uid: The miner's uid (scores are kept by uid).
        hotkey: The miner's hotkey.
        quality: 0..1 against the reference; 0 for errors.
        latency: Seconds the validator waited (to the first audio, for synthesis).
        arrived: Monotonic time the answer was complete (orders copies).
        fingerprint: For copy detection; empty for errors.
        foreign: The answer provably describes other input (e.g. another audio's length).
        error: Why there is no answer, if there is none.
    """

    uid: int
    hotkey: str
    quality: float = 0.0
    latency: float = 0.0
    arrived: float = 0.0
    fingerprint: Fingerprint = field(default_factory=Fingerprint)
    foreign: bool = False
    error: str = ""


def find_copies(outcomes: Sequence[Outcome]) -> dict[str, str]:
    """Copied answers: {copier hotkey: why}.

    An answer that provably belongs to other input is a copy. Among answers that are the
    same (see :meth:`Fingerprint.same_as`) from different hotkeys, every one but the
    earliest is a copy: a copier has to wait for the answer it copies.
    """
    copies: dict[str, str] = {o.hotkey: "answer describes another input" for o in outcomes if o.foreign}
    answered = sorted((o for o in outcomes if not o.error), key=lambda o: (o.arrived, o.uid))
    for i, later in enumerate(answered):
        for earlier in answered[:i]:
            if earlier.hotkey != later.hotkey and later.fingerprint.same_as(earlier.fingerprint):
                copies.setdefault(later.hotkey, f"same answer as uid {earlier.uid}, which answered first")
                break
    return copies


def round_scores(outcomes: Sequence[Outcome], budget: float) -> tuple[dict[int, float], dict[str, str]]:
    """Scores by uid for one challenge, and the copies found (which score 0)."""
    copies = find_copies(outcomes)
    scores = {}
    for outcome in outcomes:
        if outcome.error or outcome.hotkey in copies:
            scores[outcome.uid] = 0.0
        else:
            scores[outcome.uid] = answer_score(outcome.quality, outcome.latency, budget)
    return scores, copies
