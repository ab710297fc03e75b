"""TranscriptionService: uploads that become tasks, and live streams relayed to miners."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from violet.v1 import transcription_pb2, transcription_pb2_grpc

from violet_grpc import errors
from violet_grpc.convert import task_to_proto
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.proxy.media_check import check_media
from violet_grpc.proxy.uploads import Upload, form_flag, form_value, read_upload
from violet_grpc.rpc_errors import translate_errors
from violet_grpc.tasks import Task, TaskSpec, TaskType

AUDIO_FIELDS = ("audio_file", "file", "audio")
VIDEO_FIELDS = ("video_file", "file", "video")


class TranscriptionServicer(transcription_pb2_grpc.TranscriptionServiceServicer):
    """Creates transcription tasks and relays live streams."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @translate_errors
    async def CreateTranscription(
        self, request: transcription_pb2.CreateTranscriptionRequest, context: Any
    ) -> transcription_pb2.CreateTranscriptionResponse:
        upload = read_upload(request.audio, file_fields=AUDIO_FIELDS, max_bytes=self.ctx.max_upload_bytes, what="audio")
        await check_media(upload.data)
        task = await self._create(TaskType.TRANSCRIPTION, upload, request)
        return transcription_pb2.CreateTranscriptionResponse(task=task_to_proto(task))

    @translate_errors
    async def CreateVideoTranscription(
        self, request: transcription_pb2.CreateVideoTranscriptionRequest, context: Any
    ) -> transcription_pb2.CreateVideoTranscriptionResponse:
        upload = read_upload(request.video, file_fields=VIDEO_FIELDS, max_bytes=self.ctx.max_upload_bytes, what="video")
        await check_media(upload.data, video=True)
        task = await self._create(TaskType.VIDEO_TRANSCRIPTION, upload, request)
        return transcription_pb2.CreateVideoTranscriptionResponse(task=task_to_proto(task))

    async def _create(self, task_type: TaskType, upload: Upload, request: Any) -> Task:
        language = form_value(upload, "source_language", request.source_language).strip().lower()
        offered = self.ctx.registry.offered("languages")
        if language not in ("", "auto") and offered and language.split("-")[0] not in offered:
            raise errors.InvalidArgument(
                f"no miner transcribes {language!r}; supported: {', '.join(sorted(offered))}",
                reason="UNSUPPORTED_LANGUAGE", metadata={"field": "source_language", "supported": ",".join(sorted(offered))},
            )
        spec = TaskSpec(
            type=task_type,
            source_language="" if language == "auto" else language,
            word_timestamps=form_flag(upload, "enable_word_time_offsets", request.enable_word_time_offsets),
            initial_prompt=form_value(upload, "initial_prompt", getattr(request, "initial_prompt", "")),
            redundancy=self.ctx.settings.redundancy,
            idempotency_key=form_value(upload, "idempotency_key", request.idempotency_key),
        )
        filename = form_value(upload, "filename", request.filename) or upload.filename
        task = await self.ctx.orchestrator.create_task(
            spec, payload=upload.data, content_type=upload.content_type, filename=filename
        )
        if form_flag(upload, "wait_for_completion", request.wait_for_completion):
            task = await self.ctx.orchestrator.wait_final(task.task_id, self.ctx.settings.wait_timeout_seconds)
        return task

    @translate_errors
    async def StreamingTranscribe(
        self, request_iterator: AsyncIterator[transcription_pb2.StreamingTranscribeRequest], context: Any
    ) -> AsyncIterator[transcription_pb2.StreamingTranscribeResponse]:
        async for response in self.ctx.relay.relay(request_iterator):
            yield response
