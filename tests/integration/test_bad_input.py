"""Bad input gets a clear canonical error with an ErrorInfo, and the server keeps serving."""
from __future__ import annotations

import grpc
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from violet.v1 import (
    streaming_pb2,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
    transcription_pb2,
    transcription_pb2_grpc,
)

from tests.helpers import load_pcm16

Request = transcription_pb2.StreamingTranscribeRequest
Config = streaming_pb2.StreamingRecognitionConfig


def _error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.domain == "violet.network"
    return info


async def _stream(channel: grpc.aio.Channel, messages: list[Request]) -> list[object]:
    async def requests():
        for message in messages:
            yield message

    stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
    return [r async for r in stub.StreamingTranscribe(requests())]


async def _still_serving(channel: grpc.aio.Channel) -> None:
    reply = await system_pb2_grpc.SystemServiceStub(channel).Check(system_pb2.CheckRequest())
    assert reply.status == system_pb2.SERVING_STATUS_SERVING


STREAM_CASES = {
    "empty stream": ([], grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_STREAM"),
    "audio before config": ([Request(audio_content=b"\0\0" * 160)], grpc.StatusCode.INVALID_ARGUMENT, "CONFIG_NOT_FIRST"),
    "unknown encoding": ([Request(config=Config(encoding=0, sample_rate_hertz=16000))],
                         grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_ENCODING"),
    "encoding out of range": ([Request(config=Config(encoding=42, sample_rate_hertz=16000))],
                              grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_ENCODING"),
    "absurd sample rate": ([Request(config=Config(encoding=1, sample_rate_hertz=7))],
                           grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_SAMPLE_RATE"),
    "second config": ([Request(config=Config(encoding=1, sample_rate_hertz=16000)),
                       Request(config=Config(encoding=1, sample_rate_hertz=16000))],
                      grpc.StatusCode.INVALID_ARGUMENT, "CONFIG_REPEATED"),
    "language the model lacks": ([Request(config=Config(encoding=1, sample_rate_hertz=16000, language_code="fr")),
                                  Request(audio_content=b"\0\0" * 1600)],
                                 grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_LANGUAGE"),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
async def test_bad_streams_are_refused_clearly(local_net, case):
    messages, code, reason = STREAM_CASES[case]
    async with local_net.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _stream(channel, messages)
        assert caught.value.code() == code
        assert _error_info(caught.value).reason == reason
        assert caught.value.details()
        await _still_serving(channel)


UPLOAD_CASES = {
    "no bytes": (httpbody_pb2.HttpBody(content_type="audio/wav", data=b""), "EMPTY_UPLOAD"),
    "text, not audio": (httpbody_pb2.HttpBody(content_type="audio/wav", data=b"hello, this is not audio" * 50),
                        "UNSUPPORTED_AUDIO"),
    "random bytes": (httpbody_pb2.HttpBody(content_type="audio/mpeg", data=bytes(range(256)) * 64), "UNSUPPORTED_AUDIO"),
    "truncated flac": (None, None),
    "multipart without file": (httpbody_pb2.HttpBody(
        content_type="multipart/form-data; boundary=XYZ",
        data=b'--XYZ\r\nContent-Disposition: form-data; name="source_language"\r\n\r\nen\r\n--XYZ--\r\n'),
        "MISSING_FILE_PART"),
}


@pytest.mark.parametrize("case", list(UPLOAD_CASES))
async def test_bad_uploads_are_refused_and_nothing_is_stored(local_net, jfk_flac, case):
    body, reason = UPLOAD_CASES[case]
    if body is None:
        body = httpbody_pb2.HttpBody(content_type="audio/flac", data=jfk_flac.read_bytes()[:200])
    async with local_net.channel() as channel:
        stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateTranscription(transcription_pb2.CreateTranscriptionRequest(audio=body))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        if reason:
            assert _error_info(caught.value).reason == reason
        listing = await tasks_pb2_grpc.TasksServiceStub(channel).ListTasks(tasks_pb2.ListTasksRequest())
        assert not listing.tasks
        await _still_serving(channel)


async def test_oversize_upload_is_resource_exhausted(tmp_path, engines):
    from tests.integration.conftest import start_local_net, stop_local_net

    net = await start_local_net(tmp_path, engines, max_upload_mb=0.5)
    try:
        async with net.channel() as channel:
            stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateTranscription(transcription_pb2.CreateTranscriptionRequest(
                    audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=b"\0" * 600_000)))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            info = _error_info(caught.value)
            assert info.reason == "UPLOAD_TOO_LARGE"
            assert info.metadata["limit_bytes"] == str(512 * 1024)
            await _still_serving(channel)
    finally:
        await stop_local_net(net)


async def test_overlong_stream_is_resource_exhausted(tmp_path, engines, jfk_flac):
    from tests.integration.conftest import start_local_net, stop_local_net

    net = await start_local_net(tmp_path, engines, max_stream_seconds=2.0)
    pcm = load_pcm16(jfk_flac)
    try:
        async with net.channel() as channel:
            messages = [Request(config=Config(encoding=1, sample_rate_hertz=16000))]
            messages += [Request(audio_content=pcm[i:i + 6400]) for i in range(0, len(pcm), 6400)]
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _stream(channel, messages)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert _error_info(caught.value).reason == "STREAM_TOO_LONG"
            await _still_serving(channel)
    finally:
        await stop_local_net(net)


@pytest.mark.parametrize("request_kwargs, reason", [
    ({"page_size": -1}, "INVALID_PAGE_SIZE"),
    ({"page_token": "not-a-token"}, "INVALID_PAGE_TOKEN"),
    ({"state": 99}, "INVALID_ENUM"),
])
async def test_bad_list_requests(local_net, request_kwargs, reason):
    async with local_net.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tasks_pb2_grpc.TasksServiceStub(channel).ListTasks(tasks_pb2.ListTasksRequest(**request_kwargs))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _error_info(caught.value).reason == reason


async def test_unknown_task_is_not_found(local_net):
    async with local_net.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tasks_pb2_grpc.TasksServiceStub(channel).GetTask(tasks_pb2.GetTaskRequest(task_id="nope"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert _error_info(caught.value).reason == "TASK_NOT_FOUND"
