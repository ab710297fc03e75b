"""Fuzzing every public RPC of the proxy with requests drawn from the contracts.

A proxy and a miner run in this process (auth off, so the gateway methods are reached
too; the miner's engines answer at once, so the fuzzer spends its time in the proxy and the
miner's decoding, not in a model). Every answer must be a success or a documented error code
carrying Violet's ErrorInfo; no ERROR may be logged (an unhandled exception, a crashed
background task); and the servers must still serve a normal request afterwards.

Examples are derandomized (the same cases every run, so CI is reproducible) with a fixed
count per test; the counts here plus those of ``test_rest_fuzz.py`` sum to over 1000.
"""
from __future__ import annotations

import logging
import time

import grpc
import pytest
from google.api import httpbody_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from violet.v1 import (
    files_pb2,
    miner_gateway_pb2,
    openai_audio_pb2,
    resources_pb2,
    streaming_pb2,
    synthesis_pb2,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
    transcription_pb2,
    transcription_pb2_grpc,
    translation_pb2,
    validator_gateway_pb2,
)

from tests.fake_miner import instant_engines
from tests.fuzz.strategies import ErrorLog, Hints, audio_bytes, check_error, message_strategy, multipart_body, tone_wav
from tests.servers import start_local_net, stop_local_net

MODULES = (files_pb2, miner_gateway_pb2, openai_audio_pb2, synthesis_pb2, system_pb2, tasks_pb2, transcription_pb2,
           translation_pb2, validator_gateway_pb2)
METHODS = [method for module in MODULES for service in module.DESCRIPTOR.services_by_name.values()
           for method in service.methods]
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])
#: Long enough for any answer the instant engines allow (uploads wait at most 1 s).
TIMEOUT = 15.0


class FuzzNet:
    def __init__(self, net, hints: Hints, samples: list[bytes], errors: ErrorLog) -> None:
        self.net = net
        self.hints = hints
        self.samples = samples
        self.errors = errors
        self.channel = net.channel()


@pytest.fixture(scope="module")
async def fuzz_net(tmp_path_factory, jfk_flac):
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    # Probes every 5 s (timeout 5 s): a slow moment on a busy machine cannot take the miner
    # offline, so the "miner stays in rotation" check below only trips on a real cause.
    net = await start_local_net(tmp_path_factory.mktemp("fuzz-grpc"), instant_engines(), miners=1,
                                wait_timeout_seconds=1.0, lease_seconds=5.0, heartbeat_seconds=5.0)
    try:
        async with net.channel() as channel:
            upload = transcription_pb2_grpc.TranscriptionServiceStub(channel)
            done = (await upload.CreateTranscription(transcription_pb2.CreateTranscriptionRequest(
                audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=tone_wav()), wait_for_completion=True))).task
        samples = [tone_wav(), tone_wav(0.3, rate=8000), jfk_flac.read_bytes()[:20000]]
        hints = Hints(
            strings=["", "en", "es", "auto", "EN-us", "test-voice", "fake", "miner-0", done.task_id, done.input_file_id,
                     done.result_file_id, "audio/wav", "audio/flac", "video/mp4", "text/plain", "text/html",
                     "application/json", "multipart/form-data; boundary=XyZ", "hello world. second sentence.",
                     "127.0.0.1:1", "a" * 5001],
            blobs=samples)
        fuzz = FuzzNet(net, hints, samples, errors)
        yield fuzz
        await fuzz.channel.close()
    finally:
        await stop_local_net(net)
        logging.getLogger().removeHandler(errors)


async def _call(channel: grpc.aio.Channel, method, request) -> list:
    """Calls ``method`` (any streaming kind) and returns every response."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    output = _message_class(method.output_type)
    timeout = 3.0 if method.name == "WatchTask" else TIMEOUT
    kwargs = {"request_serializer": lambda m: m.SerializeToString(), "response_deserializer": output.FromString}
    if method.client_streaming:
        call = channel.stream_stream(path, **kwargs)(_aiter(request), timeout=timeout)
        return [reply async for reply in call]
    if method.server_streaming:
        call = channel.unary_stream(path, **kwargs)(request, timeout=timeout)
        return [reply async for reply in call]
    return [await channel.unary_unary(path, **kwargs)(request, timeout=timeout)]


async def _aiter(items):
    for item in items:
        yield item


def _message_class(descriptor):
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


def _client_side(error: grpc.aio.AioRpcError, method) -> bool:
    """Statuses this client made up itself, not answers of the server.

    - Watching a task that is still running until our deadline is fine.
    - grpc-python's asyncio client reports INTERNAL "Internal error from Core" (and drops the
      server's status) when the server ends a client stream while a write is in flight
      (grpc/grpc#36066); the server's own logs are checked for errors all the same.
    """
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and method.name == "WatchTask":
        return True
    return (method.client_streaming and error.code() == grpc.StatusCode.INTERNAL
            and error.details() == "Internal error from Core" and "SendMessageOperation" in error.debug_error_string())


async def _expect_documented(fuzz: FuzzNet, method, request) -> list:
    what = f"{method.full_name}({_short(request)})"
    try:
        return await _call(fuzz.channel, method, request)
    except grpc.aio.AioRpcError as error:
        if not _client_side(error, method):
            check_error(error, what)
        return []
    finally:
        logged = fuzz.errors.take()
        assert not logged, f"{what} logged errors:\n" + "\n".join(logged)
        # A bad request must not cost anyone else the service: the miner stays in rotation.
        registry = fuzz.net.proxy.ctx.registry
        assert registry.is_online(registry.get("miner-0")), f"{what} took the miner out of rotation"


def _short(request) -> str:
    text = str(request) if not isinstance(request, list) else f"{len(request)} messages"
    return text[:300].replace("\n", " ")


async def _healthy(fuzz: FuzzNet) -> None:
    reply = await system_pb2_grpc.SystemServiceStub(fuzz.channel).Check(system_pb2.CheckRequest(), timeout=5)
    assert reply.status == system_pb2.SERVING_STATUS_SERVING


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.full_name.removeprefix("violet.v1."))
@FUZZ
@given(data=st.data())
async def test_fuzzed_request_gets_a_documented_answer(fuzz_net, method, data):
    strategy = message_strategy(method.input_type, fuzz_net.hints)
    request = data.draw(st.lists(strategy, max_size=5) if method.client_streaming else strategy)
    await _expect_documented(fuzz_net, method, request)


STREAM = transcription_pb2.DESCRIPTOR.services_by_name["TranscriptionService"].methods_by_name["StreamingTranscribe"]
RATES = st.one_of(st.sampled_from([8000, 16000, 22050, 44100, 48000]), st.integers(8000, 48000))


@settings(FUZZ, max_examples=150)
@given(data=st.data())
async def test_fuzzed_audio_streams(fuzz_net, data):
    config = streaming_pb2.StreamingRecognitionConfig(
        encoding=data.draw(st.sampled_from([streaming_pb2.AUDIO_ENCODING_LINEAR16, streaming_pb2.AUDIO_ENCODING_MULAW])),
        sample_rate_hertz=data.draw(RATES), audio_channel_count=data.draw(st.sampled_from([0, 1, 2])),
        language_code=data.draw(st.sampled_from(["", "en", "auto"])), interim_results=data.draw(st.booleans()),
        endpointing_silence_ms=data.draw(st.sampled_from([0, 1, 300, 10_000])))
    chunks = data.draw(st.lists(st.binary(max_size=4000), max_size=8))
    requests = [transcription_pb2.StreamingTranscribeRequest(config=config)]
    requests += [transcription_pb2.StreamingTranscribeRequest(audio_content=chunk) for chunk in chunks]
    replies = await _expect_documented(fuzz_net, STREAM, requests)
    if replies:
        assert replies[-1].WhichOneof("event") == "summary"


UPLOADS = {
    "CreateTranscription": (transcription_pb2.CreateTranscriptionRequest, "audio"),
    "CreateVideoTranscription": (transcription_pb2.CreateVideoTranscriptionRequest, "video"),
    "CreateAudioTranscription": (openai_audio_pb2.CreateAudioTranscriptionRequest, "form"),
}


def _upload_method(name: str):
    for module in (transcription_pb2, openai_audio_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            if name in service.methods_by_name:
                return service.methods_by_name[name]
    raise KeyError(name)


def _upload(name: str, content_type: str, body: bytes):
    cls, field = UPLOADS[name]
    return cls(**{field: httpbody_pb2.HttpBody(content_type=content_type, data=body)})


@settings(FUZZ, max_examples=150)
@given(data=st.data())
async def test_fuzzed_audio_uploads(fuzz_net, data):
    name = data.draw(st.sampled_from(sorted(UPLOADS)))
    content_type = data.draw(st.sampled_from(["audio/wav", "audio/flac", "audio/mpeg", "video/mp4", "",
                                              "application/octet-stream", "text/plain"]))
    body = data.draw(audio_bytes(fuzz_net.samples))
    await _expect_documented(fuzz_net, _upload_method(name), _upload(name, content_type, body))


@settings(FUZZ, max_examples=150)
@given(data=st.data())
async def test_fuzzed_multipart_uploads(fuzz_net, data):
    name = data.draw(st.sampled_from(sorted(UPLOADS)))
    content_type, body = data.draw(multipart_body(["audio_file", "video_file", "file", "model"],
                                                  audio_bytes(fuzz_net.samples)))
    await _expect_documented(fuzz_net, _upload_method(name), _upload(name, content_type, body))


async def test_zz_still_healthy_after_fuzzing(fuzz_net):
    """Runs last in this module: the proxy and miner still do real work."""
    await _healthy(fuzz_net)
    stub = transcription_pb2_grpc.TranscriptionServiceStub(fuzz_net.channel)
    started = time.monotonic()
    task = (await stub.CreateTranscription(transcription_pb2.CreateTranscriptionRequest(
        audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=tone_wav(0.7)), wait_for_completion=True),
        timeout=TIMEOUT)).task
    while task.state != resources_pb2.TASK_STATE_COMPLETED and time.monotonic() - started < 30:
        task = (await tasks_pb2_grpc.TasksServiceStub(fuzz_net.channel).GetTask(
            tasks_pb2.GetTaskRequest(task_id=task.task_id))).task
    assert task.state == resources_pb2.TASK_STATE_COMPLETED, task
    assert task.transcript.text == "hello world"
    assert not fuzz_net.errors.take()
