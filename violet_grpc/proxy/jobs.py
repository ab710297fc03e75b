"""Push delivery: how the proxy has a miner do one task over the Miner service.

Each function returns the miner's answer as the JSON-ready dict that the task store buffers
and the aggregator compares; result files are stored before the answer is recorded, so an
answer never points at bytes that are not there.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from violet.v1 import miner_pb2

from violet_grpc import errors
from violet_grpc.audio.encode import seal_wav
from violet_grpc.proxy.miner_registry import MinerHandle
from violet_grpc.storage import FileStore
from violet_grpc.tasks import Task, TaskType
from violet_grpc.transcripts import transcript_to_json
from violet_grpc.convert import transcript_from_proto

Job = Callable[[Task, MinerHandle, FileStore, float], Awaitable[tuple[dict[str, Any], float]]]


async def transcribe(task: Task, miner: MinerHandle, files: FileStore, timeout: float) -> tuple[dict[str, Any], float]:
    """Sends the stored audio or video to the miner's Transcribe."""
    record, content = await files.get(task.spec.input_file_id)
    request = miner_pb2.TranscribeRequest(
        task_id=task.task_id,
        content=content,
        content_type=record.content_type,
        language_code=task.spec.source_language,
        enable_word_time_offsets=task.spec.word_timestamps,
        initial_prompt=task.spec.initial_prompt,
    )
    reply = await miner.stub.Transcribe(request, timeout=timeout)
    transcript = transcript_from_proto(reply.transcript)
    return {"transcript": transcript_to_json(transcript), "model": reply.model}, reply.processing_seconds


async def synthesize(task: Task, miner: MinerHandle, files: FileStore, timeout: float) -> tuple[dict[str, Any], float]:
    """Has the miner speak the text, then stores the audio it streamed back."""
    request = miner_pb2.MinerServiceSynthesizeRequest(
        task_id=task.task_id,
        text=task.spec.text,
        voice=task.spec.voice,
        format=int(task.spec.audio_format),
        speed=task.spec.speed,
    )
    audio, duration, content_type = bytearray(), 0.0, ""
    async for reply in miner.stub.Synthesize(request, timeout=timeout):
        audio += reply.chunk.audio_content
        duration += reply.chunk.duration_seconds
        content_type = reply.chunk.content_type or content_type
    if not audio:
        raise errors.Internal("the miner returned no audio", reason="EMPTY_MINER_ANSWER")
    stored = await files.put(seal_wav(bytes(audio)), content_type=content_type, filename=f"{task.task_id}{_extension(content_type)}")
    return {"file_id": stored.file_id, "content_type": content_type, "duration": duration}, 0.0


async def translate(task: Task, miner: MinerHandle, files: FileStore, timeout: float) -> tuple[dict[str, Any], float]:
    """Sends the stored document to the miner's TranslateDocument and stores the result."""
    record, content = await files.get(task.spec.input_file_id)
    request = miner_pb2.TranslateDocumentRequest(
        task_id=task.task_id,
        content=content,
        content_type=record.content_type,
        filename=task.spec.filename or record.filename,
        source_language=task.spec.source_language,
        target_language=task.spec.target_language,
    )
    reply = await miner.stub.TranslateDocument(request, timeout=timeout)
    name = _translated_name(task.spec.filename or record.filename, task.spec.target_language)
    stored = await files.put(reply.content, content_type=reply.content_type, filename=name)
    preview = reply.content[:20000].decode("utf-8", errors="replace")
    answer = {"file_id": stored.file_id, "content_type": reply.content_type, "text": preview, "engine": reply.engine}
    return answer, reply.processing_seconds


JOBS: dict[TaskType, Job] = {
    TaskType.TRANSCRIPTION: transcribe,
    TaskType.VIDEO_TRANSCRIPTION: transcribe,
    TaskType.SPEECH_SYNTHESIS: synthesize,
    TaskType.DOCUMENT_TRANSLATION: translate,
}


def transcript_file(task_id: str, transcript_json: dict[str, Any]) -> tuple[bytes, str, str]:
    """The bytes, content type and name of a transcript stored as a result file."""
    return json.dumps(transcript_json, ensure_ascii=False, indent=1).encode(), "application/json", f"{task_id}.json"


def _extension(content_type: str) -> str:
    return {"audio/wav": ".wav", "audio/ogg": ".ogg", "audio/mpeg": ".mp3"}.get(content_type.split(";")[0], ".pcm")


def _translated_name(filename: str, target: str) -> str:
    if not filename:
        return f"translation.{target}"
    stem, dot, ext = filename.rpartition(".")
    return f"{stem}.{target}.{ext}" if dot else f"{filename}.{target}"
