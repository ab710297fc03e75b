"""How a validator talks to a miner: three challenge calls, measured by the validator's clock.

:class:`MinerClient` is what the scoring rounds see; :class:`GrpcMinerClient` is the real
one (signed MinerService calls to the endpoint the miner published on chain). Tests give
the rounds clients with scripted behaviour, and the scoring code stays the real one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from violet.v1 import miner_pb2, miner_pb2_grpc, resources_pb2

from violet_grpc.rpc_errors import from_rpc_error


@dataclass(frozen=True)
class TranscriptAnswer:
    """A miner's transcript: text, the audio length it reports, and its word timings."""

    text: str
    duration: float
    timings: tuple[float, ...]


@dataclass(frozen=True)
class SpeechAnswer:
    """Synthesised audio (one file) and when its first chunk arrived."""

    audio: bytes
    first_chunk_seconds: float


class MinerClient(Protocol):
    """A miner as a validator sees it."""

    uid: int
    hotkey: str

    async def transcribe(self, audio: bytes, *, timeout: float) -> TranscriptAnswer:
        """Transcribes a WAV file; raises on failure."""
        ...

    async def synthesize(self, text: str, *, speed: float, timeout: float) -> SpeechAnswer:
        """Speaks ``text`` as WAV; raises on failure."""
        ...

    async def translate(self, text: str, *, source: str, target: str, timeout: float) -> str:
        """Translates plain text; raises on failure."""
        ...


class MinerCallError(Exception):
    """A miner's call failed (its status, reason and message)."""


def transcript_answer(transcript: resources_pb2.Transcript) -> TranscriptAnswer:
    """The parts of a wire transcript that scoring uses."""
    timings: list[float] = []
    for segment in transcript.segments:
        if segment.words:
            for word in segment.words:
                timings += [word.start_seconds, word.end_seconds]
        else:
            timings += [segment.start_seconds, segment.end_seconds]
    return TranscriptAnswer(text=transcript.text, duration=transcript.duration_seconds, timings=tuple(timings))


class GrpcMinerClient:
    """MinerService over a (signed) channel."""

    def __init__(self, uid: int, hotkey: str, channel: grpc.aio.Channel) -> None:
        self.uid = uid
        self.hotkey = hotkey
        self.channel = channel
        self.stub = miner_pb2_grpc.MinerServiceStub(channel)

    async def transcribe(self, audio: bytes, *, timeout: float) -> TranscriptAnswer:
        request = miner_pb2.TranscribeRequest(content=audio, content_type="audio/wav", language_code="en",
                                              enable_word_time_offsets=True)
        try:
            reply = await self.stub.Transcribe(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise MinerCallError(_describe(exc)) from exc
        return transcript_answer(reply.transcript)

    async def synthesize(self, text: str, *, speed: float, timeout: float) -> SpeechAnswer:
        request = miner_pb2.MinerServiceSynthesizeRequest(text=text, language="en", speed=speed,
                                                          format=resources_pb2.AUDIO_FORMAT_WAV)
        started = time.perf_counter()
        first: float | None = None
        parts: list[bytes] = []
        try:
            async for reply in self.stub.Synthesize(request, timeout=timeout):
                if first is None:
                    first = time.perf_counter() - started
                parts.append(reply.chunk.audio_content)
        except grpc.RpcError as exc:
            raise MinerCallError(_describe(exc)) from exc
        if first is None:
            raise MinerCallError("the miner sent no audio")
        return SpeechAnswer(audio=b"".join(parts), first_chunk_seconds=first)

    async def translate(self, text: str, *, source: str, target: str, timeout: float) -> str:
        request = miner_pb2.TranslateDocumentRequest(content=text.encode(), content_type="text/plain",
                                                     filename="challenge.txt", source_language=source,
                                                     target_language=target)
        try:
            reply = await self.stub.TranslateDocument(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise MinerCallError(_describe(exc)) from exc
        return reply.content.decode("utf-8", errors="replace")


def _describe(exc: Any) -> str:
    error = from_rpc_error(exc)
    return f"{error.code_name} {error.reason}: {error.message}"
