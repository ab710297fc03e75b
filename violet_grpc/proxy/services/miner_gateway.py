"""MinerGatewayService: the pull path for miners that poll, and heartbeats.

A miner sees and answers only tasks leased to it; the store refuses anything else.
"""
from __future__ import annotations

import base64
from typing import Any

from violet.v1 import miner_gateway_pb2, miner_gateway_pb2_grpc

from violet_grpc import errors
from violet_grpc.convert import timestamp, transcript_from_proto
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.proxy.orchestrator import utcnow
from violet_grpc.proxy.services.paging import page_size
from violet_grpc.proxy.uploads import read_upload
from violet_grpc.rpc_errors import translate_errors
from violet_grpc.tasks import Task, TaskType
from violet_grpc.transcripts import transcript_to_json

_RESULT_KINDS = {
    TaskType.TRANSCRIPTION: "transcript",
    TaskType.VIDEO_TRANSCRIPTION: "transcript",
    TaskType.SPEECH_SYNTHESIS: "audio_file_id",
    TaskType.DOCUMENT_TRANSLATION: "document",
}


def _miner_id(value: str) -> str:
    if not value.strip():
        raise errors.InvalidArgument("miner_id is required", reason="MISSING_FIELD", metadata={"field": "miner_id"})
    return value.strip()


def _to_miner_task(task: Task, miner_id: str) -> miner_gateway_pb2.MinerTask:
    lease = next(a for a in reversed(task.assignments) if a.miner_id == miner_id)
    spec = task.spec
    return miner_gateway_pb2.MinerTask(
        task_id=task.task_id, type=int(spec.type), input_file_id=spec.input_file_id,
        input_content_type=spec.input_content_type, source_language=spec.source_language,
        target_language=spec.target_language, text=spec.text, voice=spec.voice,
        audio_format=int(spec.audio_format), lease_expire_time=timestamp(lease.lease_expire_time),
        filename=spec.filename, speed=spec.speed,
    )


class MinerGatewayServicer(miner_gateway_pb2_grpc.MinerGatewayServiceServicer):
    """Serves miners that pull work."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @translate_errors
    async def Heartbeat(self, request: miner_gateway_pb2.HeartbeatRequest, context: Any) -> miner_gateway_pb2.HeartbeatResponse:
        miner_id = _miner_id(request.miner_id)
        self.ctx.registry.heartbeat(miner_id, request.endpoint, request.capabilities)
        self.ctx.dispatcher.wake()
        return miner_gateway_pb2.HeartbeatResponse(
            heartbeat_interval_seconds=self.ctx.registry.heartbeat_request_seconds)

    @translate_errors
    async def ListMinerTasks(self, request: miner_gateway_pb2.ListMinerTasksRequest, context: Any) -> miner_gateway_pb2.ListMinerTasksResponse:
        miner_id = _miner_id(request.miner_id)
        size = page_size(request.page_size, default=10, maximum=100)
        offset = _decode_offset(request.page_token)
        if not offset:
            await self._lease_more(miner_id)
        held = await self.ctx.store.miner_leases(miner_id, now=utcnow(), limit=offset + size + 1)
        page = held[offset:offset + size]
        token = _encode_offset(offset + size) if len(held) > offset + size else ""
        return miner_gateway_pb2.ListMinerTasksResponse(
            tasks=[_to_miner_task(t, miner_id) for t in page], next_page_token=token
        )

    async def _lease_more(self, miner_id: str) -> None:
        """Leases queued work of the kinds the miner serves, up to its free capacity."""
        miner = self.ctx.registry.get(miner_id)
        if miner is None or not self.ctx.registry.is_online(miner):
            raise errors.FailedPrecondition(
                "unknown miner: send a heartbeat (POST /api/v1/miner/heartbeat) with your capabilities first",
                reason="MINER_NOT_REGISTERED", metadata={"miner_id": miner_id},
            )
        now = utcnow()
        held = await self.ctx.store.miner_leases(miner_id, now=now, limit=1000)
        room = max(0, (miner.capabilities.max_slots or 1) - len(held))
        for task in await self.ctx.store.dispatchable(now=now, limit=256):
            if room <= 0:
                break
            if not miner.serves(task.type):
                continue
            if await self.ctx.store.lease(task.task_id, miner_id, now=now, lease_seconds=self.ctx.settings.lease_seconds):
                await self.ctx.store.start(task.task_id, miner_id, now=now)
                self.ctx.orchestrator.events.changed(task.task_id)
                room -= 1

    @translate_errors
    async def SubmitMinerResponse(
        self, request: miner_gateway_pb2.SubmitMinerResponseRequest, context: Any
    ) -> miner_gateway_pb2.SubmitMinerResponseResponse:
        miner_id = _miner_id(request.miner_id)
        task = await self._held_task(request.task_id, miner_id)
        if request.error_message:
            state = await self.ctx.orchestrator.fail_answer(task.task_id, miner_id, f"miner error: {request.error_message}")
            return miner_gateway_pb2.SubmitMinerResponseResponse(accepted=True, task_state=int(state))
        response = await self._response(task, request)
        outcome = await self.ctx.orchestrator.submit_answer(task.task_id, miner_id, response, request.processing_seconds)
        return miner_gateway_pb2.SubmitMinerResponseResponse(
            accepted=True, duplicate=outcome.duplicate, task_state=int(outcome.state)
        )

    async def _held_task(self, task_id: str, miner_id: str) -> Task:
        """The task, if this miner was ever assigned it; one error for unknown and foreign tasks."""
        try:
            task = await self.ctx.store.get(task_id.strip())
        except errors.NotFound:
            task = None
        if task is None or all(a.miner_id != miner_id for a in task.assignments):
            raise errors.PermissionDenied(f"task {task_id!r} is not assigned to miner {miner_id!r}",
                                          reason="TASK_NOT_ASSIGNED", metadata={"task_id": task_id, "miner_id": miner_id})
        return task

    async def _response(self, task: Task, request: Any) -> dict[str, Any]:
        kind = request.WhichOneof("result")
        expected = _RESULT_KINDS.get(task.type)
        if kind != expected:
            raise errors.InvalidArgument(f"a {task.type.name} task is answered with '{expected}', not '{kind}'",
                                         reason="WRONG_RESULT_KIND", metadata={"field": expected or "result"})
        if kind == "transcript":
            return {"transcript": transcript_to_json(transcript_from_proto(request.transcript))}
        if kind == "audio_file_id":
            record = await self.ctx.files.stat(request.audio_file_id)
            return {"file_id": record.file_id, "content_type": record.content_type, "duration": 0.0}
        document = request.document
        if not document.content:
            raise errors.InvalidArgument("document.content is empty", reason="EMPTY_DOCUMENT",
                                         metadata={"field": "document.content"})
        stored = await self.ctx.files.put(document.content, content_type=document.content_type or "application/octet-stream",
                                          filename=task.spec.filename)
        text = document.content[:20000].decode("utf-8", errors="replace")
        return {"file_id": stored.file_id, "content_type": stored.content_type, "text": text}

    @translate_errors
    async def UploadSpeechAudio(
        self, request: miner_gateway_pb2.UploadSpeechAudioRequest, context: Any
    ) -> miner_gateway_pb2.UploadSpeechAudioResponse:
        miner_id = _miner_id(request.miner_id)
        held = await self.ctx.store.miner_leases(miner_id, now=utcnow(), limit=1000)
        if not any(t.task_id == request.task_id for t in held):
            raise errors.PermissionDenied(f"task {request.task_id!r} is not leased to miner {miner_id!r}",
                                          reason="TASK_NOT_ASSIGNED", metadata={"task_id": request.task_id})
        upload = read_upload(request.audio, file_fields=("audio_file", "file", "audio"),
                             max_bytes=self.ctx.max_upload_bytes, what="audio")
        content_type = upload.content_type if upload.content_type.startswith("audio/") else "audio/wav"
        stored = await self.ctx.files.put(upload.data, content_type=content_type,
                                          filename=upload.filename or f"{request.task_id}.wav")
        return miner_gateway_pb2.UploadSpeechAudioResponse(file_id=stored.file_id, size_bytes=stored.size)


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _decode_offset(token: str) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("o"):
            raise ValueError(raw)
        return max(0, int(raw[1:]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN",
                                     metadata={"field": "page_token"}) from exc
