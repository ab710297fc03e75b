"""Miners of known quality with scripted behaviour, for running the real scoring code quickly.

Only the miners' behaviour is scripted (and the validator's audio, which needs no real
speech here): challenges, the scoring, copy detection, the EMA and the weights are the
production code. The good and slow miners make the same small mistakes; the slow one is
just slower. The garbage miner answers fast with random words. The copier waits for the
good miner's answer to the same challenge and returns it as its own.
"""
from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field

from violet_grpc.validator.challenges import Rendition
from violet_grpc.validator.miners import SpeechAnswer, TranscriptAnswer
from violet_grpc.validator.words import random_words

SECONDS_PER_WORD = 0.35


@dataclass
class World:
    """What the scripted miners know: which audio says what, and the good miner's answers."""

    rng: random.Random
    truth: dict[bytes, tuple[str, float]] = field(default_factory=dict)
    answers: dict[str, asyncio.Queue] = field(default_factory=lambda: {"t": asyncio.Queue(), "s": asyncio.Queue()})

    def audio_of(self, text: str, duration: float, salt: str) -> bytes:
        audio = hashlib.sha256(f"{text}|{duration}|{salt}".encode()).digest()
        self.truth[audio] = (text, duration)
        return audio

    def hear(self, audio: bytes) -> tuple[str, float]:
        """The validator's ears in this world."""
        return self.truth.get(audio, ("", 0.0))


class ScriptedRenderer:
    """Stands in for Piper: 'audio' whose words and length the world remembers."""

    def __init__(self, world: World) -> None:
        self.world = world

    def render(self, text, *, speed, noise_scale, noise_w, gain, snr_db, rng) -> Rendition:
        duration = round(len(text.split()) * SECONDS_PER_WORD / speed + rng.uniform(0.05, 0.3), 3)
        audio = self.world.audio_of(text, duration, f"{speed}{gain}{snr_db}{rng.random()}")
        return Rendition(audio=audio, duration=duration, speed=speed, gain=gain, snr_db=snr_db)


def _mistakes(text: str, rng: random.Random, rate: float) -> str:
    words = text.split()
    return " ".join(rng.choice(["the", "a", "and"]) if rng.random() < rate else w for w in words)


def _timings(text: str, duration: float, rng: random.Random) -> tuple[float, ...]:
    words = text.split()
    step = duration / max(1, len(words))
    out = []
    for i in range(len(words)):
        start = round(i * step + rng.uniform(0, 0.02), 2)
        out += [start, round(start + step * 0.8, 2)]
    return tuple(out)


@dataclass
class ScriptedMiner:
    """One scripted miner: ``kind`` is good, slow, garbage or copier."""

    uid: int
    hotkey: str
    kind: str
    world: World
    delay: float = 0.004
    error_rate: float = 0.06

    async def transcribe(self, audio: bytes, *, timeout: float) -> TranscriptAnswer:
        rng = self.world.rng
        if self.kind == "copier":
            return await self.world.answers["t"].get()
        text, duration = self.world.truth[audio]
        if self.kind == "garbage":
            await asyncio.sleep(self.delay)
            junk = random_words(rng, len(text.split()))
            return TranscriptAnswer(junk, duration, _timings(junk, duration, rng))
        await asyncio.sleep(self.delay)
        said = _mistakes(text, rng, self.error_rate)
        answer = TranscriptAnswer(said, duration, _timings(said, duration, rng))
        if self.kind == "good":
            self.world.answers["t"].put_nowait(answer)
        return answer

    async def synthesize(self, text: str, *, speed: float, timeout: float) -> SpeechAnswer:
        rng = self.world.rng
        if self.kind == "copier":
            return await self.world.answers["s"].get()
        await asyncio.sleep(self.delay)
        spoken = random_words(rng, len(text.split())) if self.kind == "garbage" else _mistakes(text, rng, self.error_rate)
        answer = SpeechAnswer(self.world.audio_of(spoken, len(spoken.split()) * SECONDS_PER_WORD / speed, self.hotkey),
                              first_chunk_seconds=self.delay)
        if self.kind == "good":
            self.world.answers["s"].put_nowait(answer)
        return answer

    async def translate(self, text: str, *, source: str, target: str, timeout: float) -> str:
        raise NotImplementedError("no translation in the scripted world")
