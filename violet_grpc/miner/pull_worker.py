"""Pull delivery: a miner that polls the proxy's REST API for work instead of being called.

This is how legacy miners behind NAT work: heartbeat with capabilities, list the tasks
leased to this miner, fetch each input, run the engine, upload speech audio when there is
any, and submit the answer. Every call is plain HTTP+JSON through Envoy, so the worker
exercises exactly what a miner written in any language would use.

Signing over REST: Envoy turns the JSON into the gRPC request and the proxy verifies the
btauth/1 signature over those protobuf bytes, exactly as for a gRPC caller. So the worker
signs the serialized request message it sends as JSON (method path = the gRPC method) and
puts the btauth headers on the HTTP request; Envoy forwards them as gRPC metadata.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from google.protobuf import json_format
from violet.v1 import miner_gateway_pb2, miner_pb2

from violet_grpc import errors
from violet_grpc.audio.decode import decode_file
from violet_grpc.convert import transcript_to_proto
from violet_grpc.miner.engine_loader import Engines
from violet_grpc.miner.engines.asr import TranscribeOptions
from violet_grpc.miner.engines.tts import SynthesisOptions
from violet_grpc.tasks import AudioFormat, TaskType

log = logging.getLogger(__name__)


class PullWorker:
    """Polls one proxy (REST base URL) for work leased to ``miner_id`` and does it."""

    def __init__(
        self,
        base_url: str,
        miner_id: str,
        engines: Engines,
        capabilities: Callable[[], miner_pb2.MinerCapabilities],
        *,
        poll_seconds: float = 1.0,
        session: requests.Session | None = None,
        wallet: Any = None,
        proxy_hotkey: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.miner_id = miner_id
        self.engines = engines
        self.capabilities = capabilities
        self.poll_seconds = poll_seconds
        self.http = session or requests.Session()
        self.completed = 0
        self.wallet = wallet
        self.proxy_hotkey = proxy_hotkey

    def _signed(self, grpc_method: str, message: Any) -> dict[str, str]:
        """btauth/1 headers over the request's protobuf bytes (empty when unsigned)."""
        if self.wallet is None:
            return {}
        from bittensor import http_auth

        path = f"/violet.v1.MinerGatewayService/{grpc_method}"
        return dict(http_auth.sign(self.wallet, method="POST", path=path, body=message.SerializeToString(deterministic=True),
                                   receiver_ss58=self.proxy_hotkey))

    async def run(self) -> None:
        """Polls forever (cancel to stop); a failing round is logged and retried."""
        while True:
            try:
                await asyncio.to_thread(self.poll_once)
            except (requests.RequestException, errors.VioletError) as exc:
                log.warning("pull round failed: %s", exc)
            await asyncio.sleep(self.poll_seconds)

    def poll_once(self) -> int:
        """One round: heartbeat, list leased tasks, do each. Returns tasks answered."""
        self._post("/api/v1/miner/heartbeat", "Heartbeat", miner_gateway_pb2.HeartbeatRequest(
            miner_id=self.miner_id, capabilities=self.capabilities()))
        listing = miner_gateway_pb2.ListMinerTasksRequest(miner_id=self.miner_id)
        reply = self._get(f"/api/v1/miners/{self.miner_id}/tasks", "ListMinerTasks", listing,
                          miner_gateway_pb2.ListMinerTasksResponse())
        done = 0
        for task in reply.tasks:
            self._do(task)
            done += 1
        self.completed += done
        return done

    def _do(self, task: miner_gateway_pb2.MinerTask) -> None:
        started = time.perf_counter()
        request = miner_gateway_pb2.SubmitMinerResponseRequest(task_id=task.task_id, miner_id=self.miner_id)
        try:
            self._answer(task, request)
        except errors.VioletError as exc:
            request.error_message = f"{exc.reason}: {exc.message}"
        request.processing_seconds = time.perf_counter() - started
        self._post("/api/v1/miner/response", "SubmitMinerResponse", request)

    def _answer(self, task: miner_gateway_pb2.MinerTask, request: miner_gateway_pb2.SubmitMinerResponseRequest) -> None:
        kind = TaskType(task.type)
        if kind in (TaskType.TRANSCRIPTION, TaskType.VIDEO_TRANSCRIPTION):
            audio = decode_file(self._file(task.input_file_id))
            language = task.source_language or None
            transcript = self._need(self.engines.asr, "transcription").transcribe(
                audio.samples, TranscribeOptions(language=language))
            request.transcript.CopyFrom(transcript_to_proto(transcript))
        elif kind == TaskType.SPEECH_SYNTHESIS:
            request.audio_file_id = self._synthesize(task)
        elif kind == TaskType.DOCUMENT_TRANSLATION:
            request.document.CopyFrom(self._translate(task))
        else:
            raise errors.Unimplemented(f"cannot do {kind.name} tasks", reason="CAPABILITY_NOT_SERVED")

    def _synthesize(self, task: miner_gateway_pb2.MinerTask) -> str:
        from violet_grpc.audio import encode as audio_encode

        tts = self._need(self.engines.tts, "speech synthesis")
        chunk = tts.synthesize(task.text, SynthesisOptions(voice=task.voice or None, speed=task.speed or 1.0))
        fmt = {AudioFormat.MP3: audio_encode.AudioFormat.MP3, AudioFormat.OGG_OPUS: audio_encode.AudioFormat.OGG_OPUS}.get(
            AudioFormat(task.audio_format or AudioFormat.WAV), audio_encode.AudioFormat.WAV)
        data = audio_encode.encode(chunk.samples, chunk.sample_rate, fmt)
        content_type = audio_encode.content_type(fmt, chunk.sample_rate)
        signed = miner_gateway_pb2.UploadSpeechAudioRequest(task_id=task.task_id, miner_id=self.miner_id)
        signed.audio.content_type, signed.audio.data = content_type, data
        reply = self.http.post(
            f"{self.base_url}/api/v1/miner/tts/upload-audio",
            params={"task_id": task.task_id, "miner_id": self.miner_id},
            data=data, headers={"content-type": content_type, **self._signed("UploadSpeechAudio", signed)}, timeout=60,
        )
        _raise_for(reply)
        return reply.json()["file_id"]

    def _translate(self, task: miner_gateway_pb2.MinerTask) -> miner_gateway_pb2.TranslatedDocument:
        from violet_grpc.miner import documents
        from violet_grpc.miner.engines.translate import LanguagePair, check_pair

        translator = self._need(self.engines.translator, "document translation")
        pair = LanguagePair(task.source_language, task.target_language)
        check_pair(translator, pair)
        data = self._file(task.input_file_id)
        fmt = documents.detect_format(task.filename or None, task.input_content_type or None, data)
        content = documents.translate_document(data, fmt, pair, translator)
        return miner_gateway_pb2.TranslatedDocument(content=content, content_type=documents.content_type(fmt))

    @staticmethod
    def _need(engine: Any, what: str) -> Any:
        if engine is None:
            raise errors.Unimplemented(f"this miner does not serve {what}", reason="CAPABILITY_NOT_SERVED")
        return engine

    def _file(self, file_id: str) -> bytes:
        reply = self.http.get(f"{self.base_url}/api/v1/files/{file_id}", timeout=60)
        _raise_for(reply)
        return reply.content

    def _get(self, path: str, grpc_method: str, request: Any, into: Any) -> Any:
        reply = self.http.get(f"{self.base_url}{path}", headers=self._signed(grpc_method, request), timeout=30)
        _raise_for(reply)
        return json_format.ParseDict(reply.json(), into, ignore_unknown_fields=True)

    def _post(self, path: str, grpc_method: str, message: Any) -> dict[str, Any]:
        body = json_format.MessageToDict(message, preserving_proto_field_name=True)
        reply = self.http.post(f"{self.base_url}{path}", json=body, headers=self._signed(grpc_method, message),
                               timeout=30)
        _raise_for(reply)
        return reply.json() if reply.content else {}


def _raise_for(reply: requests.Response) -> None:
    if reply.status_code < 400:
        return
    try:
        message = reply.json().get("message", reply.text)
    except ValueError:
        message = reply.text
    cls = {400: errors.InvalidArgument, 401: errors.Unauthenticated, 403: errors.PermissionDenied,
           404: errors.NotFound, 409: errors.FailedPrecondition, 413: errors.ResourceExhausted,
           429: errors.ResourceExhausted, 501: errors.Unimplemented, 503: errors.Unavailable}.get(
        reply.status_code, errors.Unavailable)
    raise cls(f"HTTP {reply.status_code} from the proxy: {message}", reason=f"HTTP_{reply.status_code}")
