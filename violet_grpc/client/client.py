"""VioletClient: the public gRPC API with domain types in and out.

Calls raise :class:`~violet_grpc.errors.VioletError` subclasses rebuilt from the server's
status details, so callers never handle ``grpc.RpcError`` themselves.
"""
from __future__ import annotations

import asyncio
import mimetypes
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from google.api import httpbody_pb2
from violet.v1 import (
    files_pb2,
    files_pb2_grpc,
    resources_pb2,
    streaming_pb2,
    synthesis_pb2,
    synthesis_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
    transcription_pb2,
    transcription_pb2_grpc,
    translation_pb2,
    translation_pb2_grpc,
)

from violet_grpc.rpc_errors import from_rpc_error
from violet_grpc.server_common import CHANNEL_OPTIONS


@dataclass(frozen=True)
class StreamEvent:
    """One message of a live transcription, flattened for display.

    ``kind`` is "interim", "final", "utterance_end" or "summary"; ``received`` is the
    monotonic time it arrived (for latency measurements).
    """

    kind: str
    text: str
    start: float
    end: float
    stability: float
    received: float
    message: transcription_pb2.StreamingTranscribeResponse


class VioletClient:
    """An asyncio client for one proxy."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.transcription = transcription_pb2_grpc.TranscriptionServiceStub(self.channel)
        self.tasks = tasks_pb2_grpc.TasksServiceStub(self.channel)
        self.files = files_pb2_grpc.FilesServiceStub(self.channel)
        self.synthesis = synthesis_pb2_grpc.SynthesisServiceStub(self.channel)
        self.translation = translation_pb2_grpc.TranslationServiceStub(self.channel)

    async def close(self) -> None:
        """Closes the channel."""
        await self.channel.close()

    async def __aenter__(self) -> VioletClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def transcribe_file(self, path: Path, *, language: str = "", wait: bool = True,
                              word_timestamps: bool = True) -> resources_pb2.Task:
        """Uploads a file as a transcription task; with ``wait``, returns it finished."""
        data = Path(path).read_bytes()
        content_type = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        request = transcription_pb2.CreateTranscriptionRequest(
            audio=httpbody_pb2.HttpBody(content_type=content_type, data=data), source_language=language,
            filename=Path(path).name, wait_for_completion=wait, enable_word_time_offsets=word_timestamps,
        )
        try:
            reply = await self.transcription.CreateTranscription(request)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return reply.task

    async def stream_pcm(
        self,
        pcm16: bytes,
        *,
        sample_rate: int = 16000,
        chunk_ms: int = 100,
        realtime: bool = True,
        language: str = "",
        interim_results: bool = True,
        word_timestamps: bool = True,
    ) -> AsyncIterator[StreamEvent]:
        """Streams 16-bit mono PCM as a microphone would, yielding results as they arrive."""
        config = streaming_pb2.StreamingRecognitionConfig(
            encoding=streaming_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=sample_rate,
            audio_channel_count=1, language_code=language, interim_results=interim_results,
            enable_word_time_offsets=word_timestamps,
        )
        step = int(sample_rate * chunk_ms / 1000) * 2
        started = time.monotonic()

        async def requests() -> AsyncIterator[transcription_pb2.StreamingTranscribeRequest]:
            yield transcription_pb2.StreamingTranscribeRequest(config=config)
            for index, offset in enumerate(range(0, len(pcm16), step)):
                if realtime:
                    delay = started + index * chunk_ms / 1000 - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                yield transcription_pb2.StreamingTranscribeRequest(audio_content=pcm16[offset:offset + step])

        try:
            async for message in self.transcription.StreamingTranscribe(requests()):
                yield _flatten(message)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def get_task(self, task_id: str) -> resources_pb2.Task:
        """One task."""
        try:
            return (await self.tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))).task
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def list_tasks(self, *, page_size: int = 20, page_token: str = "") -> tasks_pb2.ListTasksResponse:
        """A page of tasks, newest first."""
        try:
            return await self.tasks.ListTasks(tasks_pb2.ListTasksRequest(page_size=page_size, page_token=page_token))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def get_file(self, file_id: str) -> httpbody_pb2.HttpBody:
        """A stored file's bytes and content type."""
        try:
            return (await self.files.GetFile(files_pb2.GetFileRequest(file_id=file_id))).content
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def synthesize(self, text: str, *, voice: str = "", fmt: int = resources_pb2.AUDIO_FORMAT_WAV,
                         speed: float = 1.0) -> AsyncIterator[synthesis_pb2.SynthesizeResponse]:
        """Streams synthesised speech chunk by chunk."""
        request = synthesis_pb2.SynthesizeRequest(text=text, voice=voice, format=fmt, speed=speed)
        try:
            async for reply in self.synthesis.Synthesize(request):
                yield reply
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def translate_file(self, path: Path, *, source: str, target: str, wait: bool = True) -> resources_pb2.Task:
        """Uploads a document as a translation task; with ``wait``, returns it finished."""
        content_type = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        request = translation_pb2.CreateDocumentTranslationRequest(
            document=httpbody_pb2.HttpBody(content_type=content_type, data=Path(path).read_bytes()),
            source_language=source, target_language=target, filename=Path(path).name, wait_for_completion=wait,
        )
        try:
            return (await self.translation.CreateDocumentTranslation(request)).task
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc


def _flatten(message: transcription_pb2.StreamingTranscribeResponse) -> StreamEvent:
    now = time.monotonic()
    kind = message.WhichOneof("event")
    if kind == "interim":
        i = message.interim
        return StreamEvent("interim", i.text, i.start_seconds, i.end_seconds, i.stability, now, message)
    if kind == "final_result":
        s = message.final_result.segment
        return StreamEvent("final", s.text, s.start_seconds, s.end_seconds, 1.0, now, message)
    if kind == "utterance_end":
        t = message.utterance_end.time_seconds
        return StreamEvent("utterance_end", "", t, t, 1.0, now, message)
    s = message.summary
    return StreamEvent("summary", s.transcript_text, 0.0, s.audio_seconds, 1.0, now, message)


def pcm16_mono(samples: np.ndarray) -> bytes:
    """float32 samples in -1..1 → 16-bit little-endian PCM bytes."""
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def chunks(data: bytes, size: int) -> Iterable[bytes]:
    """Splits bytes into pieces of at most ``size``."""
    return (data[i:i + size] for i in range(0, len(data), size))
