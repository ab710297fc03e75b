"""Trivial engines for a real miner server, and a command that runs one as its own process.

The proxy's cost (relaying streams, dispatching tasks) only shows once the engine costs
nothing, and faults (a miner that hangs) are only reproducible with an engine that does what
the test says. These engines plug into the real ``MinerServicer`` through ``Engines``, so
everything around them (decoding, resampling, slots, errors, the wire) is the production code.

- :class:`EchoAsrEngine`: ``transcribe`` answers a fixed transcript at once; its streams
  answer every ``accept`` with one interim whose ``end`` is the stream time received so far
  (a clock mark the sender can match to the chunk it sent, to time the relay).
- :class:`InstantTtsEngine` / :class:`InstantTranslator`: answer at once.
- :class:`HangingAsrEngine`: ``transcribe`` never returns (until :meth:`release`), the way a
  miner stuck on a wedged GPU looks from outside: it still answers GetCapabilities.

    python -m tests.fake_miner --port 0 [--kind echo|hang] [--max-slots N]

prints ``fake miner listening on 127.0.0.1:PORT`` once it serves.
"""
from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from violet_grpc.miner.engine_loader import Engines
from violet_grpc.miner.engines.asr import (
    SAMPLE_RATE,
    Final,
    Interim,
    Segment,
    StreamEvent,
    StreamOptions,
    TranscribeOptions,
    Transcript,
    UtteranceEnd,
    Word,
)
from violet_grpc.miner.engines.translate import LanguagePair, translate_html_by_text_nodes
from violet_grpc.miner.engines.tts import AudioChunk, SynthesisOptions, Voice

TEXT = "hello world"


class EchoStreamSession:
    """Answers each ``accept`` with an interim marking how much audio has arrived."""

    def __init__(self, options: StreamOptions) -> None:
        self.language = options.language or "en"
        self._samples = 0

    @property
    def audio_seconds(self) -> float:
        return self._samples / SAMPLE_RATE

    def accept(self, pcm: np.ndarray) -> list[StreamEvent]:
        self._samples += int(pcm.size)
        return [Interim(TEXT, 0.5, 0.0, self.audio_seconds)]

    def finish(self) -> list[StreamEvent]:
        end = self.audio_seconds
        words = (Word("hello", 0.0, end / 2, 1.0), Word("world", end / 2, end, 1.0))
        return [Final(Segment(TEXT, 0.0, end, words), 0), UtteranceEnd(end, 0)]


class EchoAsrEngine:
    """An ASR engine that costs nothing: the proxy's (or the wire's) cost is all that is left."""

    name = "echo"
    device = "cpu"

    def languages(self) -> tuple[str, ...]:
        return ("en",)

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        duration = len(audio) / SAMPLE_RATE
        return Transcript(TEXT, "en", 1.0, duration, (Segment(TEXT, 0.0, duration),))

    def open_stream(self, options: StreamOptions) -> EchoStreamSession:
        return EchoStreamSession(options)


class HangingAsrEngine(EchoAsrEngine):
    """``transcribe`` blocks until :meth:`release` (a miner that takes work and never answers)."""

    name = "hanging"

    def __init__(self) -> None:
        self._released = threading.Event()
        self.calls = 0

    def release(self) -> None:
        """Lets every blocked call return (so the test's threads end)."""
        self._released.set()

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        self.calls += 1
        self._released.wait()
        return super().transcribe(audio, options)


class InstantTtsEngine:
    """One voice that speaks 0.1 s of a quiet tone per sentence, at once."""

    name = "instant-tts"
    device = "cpu"
    rate = 16000

    def voices(self) -> tuple[Voice, ...]:
        return (Voice("test-voice", "en_US", self.rate, self.name),)

    def synthesize_stream(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        tone = (0.1 * np.sin(np.arange(self.rate // 10) * 0.3)).astype(np.float32)
        sentences = [s for s in text.split(".") if s.strip()] or [text]
        for index, sentence in enumerate(sentences):
            yield AudioChunk(tone, self.rate, sentence, index, index == len(sentences) - 1)

    def synthesize(self, text: str, options: SynthesisOptions) -> AudioChunk:
        chunks = list(self.synthesize_stream(text, options))
        return AudioChunk(np.concatenate([c.samples for c in chunks]), self.rate, text, 0, True)


class InstantTranslator:
    """English to Spanish by upper-casing: enough for the document path around it."""

    name = "instant-translate"
    device = "cpu"

    def pairs(self) -> tuple[LanguagePair, ...]:
        return (LanguagePair("en", "es"),)

    def translate_texts(self, texts: Sequence[str], pair: LanguagePair) -> list[str]:
        return [t.upper() for t in texts]

    def translate_html(self, html: str, pair: LanguagePair) -> str:
        return translate_html_by_text_nodes(self, html, pair)


def instant_engines() -> Engines:
    """Every kind of engine, each answering at once."""
    return Engines(asr=EchoAsrEngine(), tts=InstantTtsEngine(), translator=InstantTranslator())


async def _serve(port: int, kind: str, max_slots: int, miner_id: str) -> None:
    from violet_grpc.miner.server import create_server
    from violet_grpc.settings import MinerSettings

    engines = instant_engines()
    if kind == "hang":
        engines.asr = HangingAsrEngine()
    settings = MinerSettings(port=port, miner_id=miner_id, max_slots=max_slots, auth=False)
    server, bound, _ = await create_server(settings, engines)
    print(f"fake miner listening on 127.0.0.1:{bound}", flush=True)
    await server.wait_for_termination()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a miner with trivial engines (tests and benchmarks).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kind", choices=("echo", "hang"), default="echo")
    parser.add_argument("--max-slots", type=int, default=4096)
    parser.add_argument("--miner-id", default="fake-miner")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.kind, args.max_slots, args.miner_id))


if __name__ == "__main__":
    main()
