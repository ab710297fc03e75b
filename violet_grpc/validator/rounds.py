"""One challenge round: make the challenge, ask every miner at once, score what comes back.

Heavy work (rendering challenge audio, the validator's own ASR) runs on worker threads, so
a validator sharing its event loop with servers (tests, or a co-located miner) keeps them
responsive.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from violet_grpc.validator import scoring
from violet_grpc.validator.challenges import ChallengeMaker
from violet_grpc.validator.miners import MinerClient

log = logging.getLogger(__name__)

#: Duration mismatch (seconds, or share of the audio) beyond which a transcript is of other audio.
DURATION_SLACK = (0.05, 0.02)


@dataclass(frozen=True)
class Budgets:
    """Latency at which an answer earns half its speed credit (seconds)."""

    #: Transcription: ``base + per_audio_second × audio duration``.
    transcription_base: float = 0.5
    transcription_per_second: float = 0.5
    #: Synthesis: time to the first audio chunk.
    synthesis_first_audio: float = 1.0
    #: Translation of a couple of sentences.
    translation: float = 1.0

    def scaled(self, factor: float) -> Budgets:
        """Every budget times ``factor``."""
        return Budgets(self.transcription_base * factor, self.transcription_per_second * factor,
                       self.synthesis_first_audio * factor, self.translation * factor)


@dataclass(frozen=True)
class RoundReport:
    """What one round found."""

    kind: str
    challenge_id: str
    scores: dict[int, float]
    copies: dict[str, str] = field(default_factory=dict)
    outcomes: tuple[scoring.Outcome, ...] = ()


class Rounds:
    """Runs challenge rounds against miners.

    Args:
        maker: Where challenges come from.
        transcribe_audio: The validator's own ASR (WAV bytes → (text, duration)), for
            scoring synthesis; None disables synthesis rounds.
        budgets: Latency budgets.
        timeout: Longest a miner may take on one challenge.
    """

    def __init__(self, maker: ChallengeMaker, transcribe_audio: Callable[[bytes], tuple[str, float]] | None = None,
                 *, budgets: Budgets = Budgets(), timeout: float = 30.0) -> None:
        self.maker = maker
        self.transcribe_audio = transcribe_audio
        self.budgets = budgets
        self.timeout = timeout

    def kinds(self) -> list[str]:
        """Challenge kinds this validator can run."""
        out = []
        if self.maker.renderer is not None:
            out.append("transcription")
        if self.transcribe_audio is not None:
            out.append("synthesis")
        if self.maker.translator is not None:
            out.append("translation")
        return out

    async def run(self, kind: str, miners: Sequence[MinerClient]) -> RoundReport:
        """One round of ``kind`` against ``miners``."""
        runner = {"transcription": self.transcription, "synthesis": self.synthesis,
                  "translation": self.translation}[kind]
        return await runner(miners)

    async def _ask(self, miner: MinerClient, call: Callable[[], Awaitable[Any]]) -> tuple[Any, float, float, str]:
        """(answer, seconds it took, monotonic time it was complete, error)."""
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(call(), self.timeout)
        except Exception as exc:  # a miner's failure of any kind is its own zero, never the round's
            log.info("miner %s failed: %s", miner.hotkey, exc)
            return None, 0.0, time.monotonic(), str(exc) or type(exc).__name__
        done = time.monotonic()
        return answer, done - started, done, ""

    async def transcription(self, miners: Sequence[MinerClient]) -> RoundReport:
        challenge = await asyncio.to_thread(self.maker.transcription, [m.hotkey for m in miners])

        async def one(miner: MinerClient) -> scoring.Outcome:
            rendition = challenge.renditions[miner.hotkey]
            answer, latency, arrived, error = await self._ask(
                miner, lambda: miner.transcribe(rendition.audio, timeout=self.timeout))
            if error:
                return scoring.Outcome(miner.uid, miner.hotkey, error=error, arrived=arrived)
            slack = max(DURATION_SLACK[0], DURATION_SLACK[1] * rendition.duration)
            foreign = answer.duration > 0 and abs(answer.duration - rendition.duration) > slack
            return scoring.Outcome(
                miner.uid, miner.hotkey, quality=scoring.quality(challenge.text, answer.text), latency=latency,
                arrived=arrived, fingerprint=scoring.transcript_fingerprint(answer.text, answer.timings),
                foreign=foreign)

        outcomes = await asyncio.gather(*(one(m) for m in miners))
        durations = [r.duration for r in challenge.renditions.values()] or [0.0]
        budget = self.budgets.transcription_base + self.budgets.transcription_per_second * (sum(durations) / len(durations))
        scores, copies = scoring.round_scores(outcomes, budget)
        return RoundReport("transcription", challenge.challenge_id, scores, copies, tuple(outcomes))

    async def synthesis(self, miners: Sequence[MinerClient]) -> RoundReport:
        if self.transcribe_audio is None:
            raise RuntimeError("synthesis rounds need the validator's own ASR")
        challenge = self.maker.synthesis([m.hotkey for m in miners])
        listen = self.transcribe_audio

        async def one(miner: MinerClient) -> scoring.Outcome:
            text, speed = challenge.items[miner.hotkey]
            answer, took, done, error = await self._ask(
                miner, lambda: miner.synthesize(text, speed=speed, timeout=self.timeout))
            if error:
                return scoring.Outcome(miner.uid, miner.hotkey, error=error, arrived=done)
            # A stream is "answered" when its first audio arrives: a copier cannot start
            # before the stream it copies has ended.
            arrived = done - took + answer.first_chunk_seconds
            try:
                heard, duration = await asyncio.to_thread(listen, answer.audio)
            except Exception as exc:  # undecodable audio is the miner's failure
                return scoring.Outcome(miner.uid, miner.hotkey, error=f"unusable audio: {exc}", arrived=arrived)
            return scoring.Outcome(
                miner.uid, miner.hotkey, quality=scoring.quality(text, heard),
                latency=answer.first_chunk_seconds, arrived=arrived,
                fingerprint=scoring.audio_fingerprint(answer.audio, heard, duration))

        outcomes = await asyncio.gather(*(one(m) for m in miners))
        scores, copies = scoring.round_scores(outcomes, self.budgets.synthesis_first_audio)
        return RoundReport("synthesis", challenge.challenge_id, scores, copies, tuple(outcomes))

    async def translation(self, miners: Sequence[MinerClient]) -> RoundReport:
        challenge = await asyncio.to_thread(self.maker.translation, [m.hotkey for m in miners])

        async def one(miner: MinerClient) -> scoring.Outcome:
            item = challenge.items[miner.hotkey]
            answer, latency, arrived, error = await self._ask(
                miner, lambda: miner.translate(item.text, source=challenge.source, target=challenge.target,
                                               timeout=self.timeout))
            if error:
                return scoring.Outcome(miner.uid, miner.hotkey, error=error, arrived=arrived)
            # Each miner had its own text, so a copied translation is wrong anyway; the
            # same output for two different texts is flagged as well.
            return scoring.Outcome(miner.uid, miner.hotkey, quality=scoring.quality(item.reference, answer),
                                   latency=latency, arrived=arrived, fingerprint=scoring.text_fingerprint(answer))

        outcomes = await asyncio.gather(*(one(m) for m in miners))
        scores, copies = scoring.round_scores(outcomes, self.budgets.translation)
        return RoundReport("translation", challenge.challenge_id, scores, copies, tuple(outcomes))
