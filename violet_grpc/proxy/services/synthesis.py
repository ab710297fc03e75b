"""SynthesisService: speech tasks, their audio, and streamed synthesis relayed from a miner."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.api import httpbody_pb2
from violet.v1 import miner_pb2, resources_pb2, synthesis_pb2, synthesis_pb2_grpc

from violet_grpc import errors
from violet_grpc.audio.encode import seal_wav
from violet_grpc.convert import task_to_proto
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.proxy.jobs import _extension
from violet_grpc.rpc_errors import from_rpc_error, translate_errors
from violet_grpc.tasks import AudioFormat, TaskSpec, TaskType

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 5000


def validate_speech(text: str, speed: float, fmt: int) -> tuple[str, float, AudioFormat]:
    """Checks the fields every speech request shares; returns them normalised."""
    if not text.strip():
        raise errors.InvalidArgument("text is empty: send the text to speak", reason="EMPTY_TEXT",
                                     metadata={"field": "text"})
    if len(text) > MAX_TEXT_CHARS:
        raise errors.InvalidArgument(f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}",
                                     reason="TEXT_TOO_LONG", metadata={"field": "text", "limit": str(MAX_TEXT_CHARS)})
    speed = speed or 1.0
    if not 0.25 <= speed <= 4.0:
        raise errors.InvalidArgument("speed must be between 0.25 and 4", reason="INVALID_SPEED",
                                     metadata={"field": "speed"})
    if fmt == resources_pb2.AUDIO_FORMAT_UNSPECIFIED:
        return text, speed, AudioFormat.WAV
    try:
        return text, speed, AudioFormat(fmt)
    except ValueError:
        raise errors.InvalidArgument(f"format {fmt} is not a known AudioFormat", reason="UNSUPPORTED_FORMAT",
                                     metadata={"field": "format"}) from None


class SynthesisServicer(synthesis_pb2_grpc.SynthesisServiceServicer):
    """Text to speech through the miners."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    def _check_voice(self, voice: str) -> None:
        """Refuses a voice no online miner offers, naming those that are offered."""
        offered = self.ctx.registry.offered("voices")
        if voice and offered and voice not in offered:
            raise errors.InvalidArgument(
                f"unknown voice {voice!r}; available: {', '.join(sorted(offered))}",
                reason="UNKNOWN_VOICE", metadata={"field": "voice", "available": ",".join(sorted(offered))},
            )

    @translate_errors
    async def CreateSpeech(self, request: synthesis_pb2.CreateSpeechRequest, context: Any) -> synthesis_pb2.CreateSpeechResponse:
        text, speed, fmt = validate_speech(request.text, request.speed, request.format)
        self._check_voice(request.voice)
        spec = TaskSpec(
            type=TaskType.SPEECH_SYNTHESIS, text=text, voice=request.voice, source_language=request.language,
            audio_format=fmt, speed=speed, redundancy=self.ctx.settings.redundancy,
            idempotency_key=request.idempotency_key,
        )
        task = await self.ctx.orchestrator.create_task(spec)
        if request.wait_for_completion:
            task = await self.ctx.orchestrator.wait_final(task.task_id, self.ctx.settings.wait_timeout_seconds)
        return synthesis_pb2.CreateSpeechResponse(task=task_to_proto(task))

    @translate_errors
    async def GetSpeechAudio(self, request: synthesis_pb2.GetSpeechAudioRequest, context: Any) -> synthesis_pb2.GetSpeechAudioResponse:
        if not request.file_id.strip():
            raise errors.InvalidArgument("file_id is required", reason="MISSING_FIELD", metadata={"field": "file_id"})
        record, data = await self.ctx.files.get(request.file_id.strip())
        if not record.content_type.startswith("audio/"):
            raise errors.NotFound(f"file {request.file_id!r} is not speech audio", reason="FILE_NOT_AUDIO",
                                  metadata={"file_id": request.file_id})
        return synthesis_pb2.GetSpeechAudioResponse(audio=httpbody_pb2.HttpBody(content_type=record.content_type, data=data))

    @translate_errors
    async def Synthesize(self, request: synthesis_pb2.SynthesizeRequest, context: Any) -> AsyncIterator[synthesis_pb2.SynthesizeResponse]:
        text, speed, fmt = validate_speech(request.text, request.speed, request.format)
        self._check_voice(request.voice)
        miner_request = miner_pb2.MinerServiceSynthesizeRequest(
            text=text, voice=request.voice, language=request.language, format=int(fmt), speed=speed
        )
        tried: set[str] = set()
        while True:
            miner = self.ctx.registry.pick(TaskType.SPEECH_SYNTHESIS, exclude=tried)
            if miner is None:
                raise errors.Unavailable("no miner is available for speech synthesis", reason="NO_MINER_AVAILABLE")
            tried.add(miner.miner_id)
            audio, sent = bytearray(), 0
            miner.in_flight += 1
            try:
                async for reply in miner.stub.Synthesize(miner_request, timeout=self.ctx.settings.lease_seconds):
                    audio += reply.chunk.audio_content
                    content_type = reply.chunk.content_type
                    sent += 1
                    if reply.chunk.is_last:
                        task_id = await self._store(text, request, fmt, speed, bytes(audio), content_type, miner.miner_id)
                        yield synthesis_pb2.SynthesizeResponse(chunk=reply.chunk, task_id=task_id)
                    else:
                        yield synthesis_pb2.SynthesizeResponse(chunk=reply.chunk)
                return
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
                if sent or error.code_name in ("INVALID_ARGUMENT", "UNIMPLEMENTED"):
                    raise error from exc
                log.warning("synthesis on %s failed before any audio (%s); trying another miner", miner.miner_id, error.code_name)
            finally:
                miner.in_flight -= 1

    async def _store(self, text: str, request: Any, fmt: AudioFormat, speed: float, audio: bytes, content_type: str, miner_id: str) -> str:
        """Keeps streamed speech as a completed task so validators can evaluate it later."""
        spec = TaskSpec(type=TaskType.SPEECH_SYNTHESIS, text=text, voice=request.voice,
                        source_language=request.language, audio_format=fmt, speed=speed)
        stored = await self.ctx.files.put(seal_wav(audio), content_type=content_type, filename=f"speech{_extension(content_type)}")
        answer = {"file_id": stored.file_id, "content_type": content_type, "duration": 0.0}
        task = await self.ctx.orchestrator.record_live(spec, miner_id, answer)
        return task.task_id
