"""Fuzzing the REST API through Envoy, and the real engines with random audio.

The processes ``violet up`` starts (miner with tiny.en and Piper, proxy, validator, Envoy;
signed calls between them) get random JSON bodies for every JSON route (drawn from the
request messages, then broken: wrong types, unknown fields, bad JSON), multipart and raw
bodies for every upload route, random path segments and query strings for every GET route,
and random audio streamed over gRPC into the real streaming decoder.

Every answer must be a success, a 4xx, or a 5xx the API documents (501 not implemented,
503 unavailable), and every error body must be the JSON error shape (``code`` and
``message``); afterwards the stack must still transcribe real speech.
"""
from __future__ import annotations

import json
import string

import grpc
import pytest
import requests
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from violet.v1 import (
    miner_gateway_pb2,
    openai_audio_pb2,
    streaming_pb2,
    synthesis_pb2,
    transcription_pb2,
    transcription_pb2_grpc,
    validator_gateway_pb2,
)

from tests.fuzz.strategies import Hints, audio_bytes, check_error, message_strategy, multipart_body, tone_wav
from tests.helpers import wer

pytestmark = pytest.mark.slow

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
#: 5xx statuses the API documents: UNIMPLEMENTED (a miner without the capability) and
#: UNAVAILABLE (no miner, store unwritable). Anything else means a crash or a hang.
DOCUMENTED_5XX = {501, 503}

JSON_ROUTES = {
    "/api/v1/tts": synthesis_pb2.CreateSpeechRequest,
    "/v1/audio/speech": openai_audio_pb2.CreateAudioSpeechRequest,
    "/api/v1/miner/response": miner_gateway_pb2.SubmitMinerResponseRequest,
    "/api/v1/miner/heartbeat": miner_gateway_pb2.HeartbeatRequest,
    "/api/v1/validator/evaluate": validator_gateway_pb2.SubmitEvaluationRequest,
}
UPLOAD_ROUTES = {
    "/api/v1/transcription": ["audio_file", "file", "audio"],
    "/api/v1/video-transcription": ["video_file", "file"],
    "/api/v1/document-translation": ["document_file", "file"],
    "/v1/audio/transcriptions": ["file", "model", "response_format"],
    "/api/v1/miner/tts/upload-audio": ["audio_file", "task_id"],
}
GET_ROUTES = ["/api/v1/files/{}", "/api/v1/files/{}/download", "/api/v1/tts/audio/{}", "/api/v1/tasks/{}",
              "/api/v1/miners/{}/tasks", "/api/v1/tasks", "/api/v1/tasks/completed", "/api/v1/status",
              "/api/v1/validator/tasks", "/health", "/api/v1/{}", "/{}"]
SAMPLES = [tone_wav(0.4), b"hello, this is a document.\nSecond line.", b"<p>Hello <b>world</b></p>"]


@pytest.fixture(scope="module")
def rest(stack):
    session = requests.Session()
    yield f"http://127.0.0.1:{stack.rest_port}", session
    session.close()


def check_reply(reply: requests.Response, what: str) -> None:
    assert reply.status_code < 500 or reply.status_code in DOCUMENTED_5XX, \
        f"{what}: HTTP {reply.status_code}: {reply.text[:300]}"
    if reply.status_code >= 400:
        try:
            body = reply.json()
        except ValueError:
            raise AssertionError(f"{what}: HTTP {reply.status_code} without a JSON error body: {reply.text[:300]}")
        assert isinstance(body.get("code"), int) and isinstance(body.get("message"), str), f"{what}: {body}"
        if reply.status_code in DOCUMENTED_5XX:
            assert body["code"] in (12, 14), f"{what}: {body}"  # UNIMPLEMENTED, UNAVAILABLE


def _json_value() -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                        st.text(max_size=30))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                        max_leaves=6)


def _json_bodies(message_class) -> st.SearchStrategy[bytes]:
    """Well-shaped JSON from the message, the same with fields broken, and text that is not JSON."""
    hints = Hints(strings=["", "en", "en_US-joe-medium", "Hello there. How are you?", "wav", "mp3", "tts-1"])
    shaped = message_strategy(message_class.DESCRIPTOR, hints).map(
        lambda m: json_format.MessageToDict(m, preserving_proto_field_name=True))
    names = [f.name for f in message_class.DESCRIPTOR.fields] + ["unknown_field", ""]
    broken = st.tuples(shaped, st.dictionaries(st.sampled_from(names), _json_value(), max_size=3)).map(
        lambda pair: {**pair[0], **pair[1]})
    as_json = st.one_of(shaped, broken).map(lambda d: json.dumps(d).encode())
    not_json = st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode),
                         st.sampled_from([b"{", b"[]", b"null", b'{"text": }', b'"text"', b"{}" * 1000]))
    return st.one_of(as_json, as_json, not_json)


def _limit_text(body: bytes) -> bytes:
    """Keeps speech requests short: the real Piper voice would otherwise fill the test's time."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and isinstance(data.get("text"), str):
        data["text"] = data["text"][:80]
    if isinstance(data, dict) and isinstance(data.get("input"), str):
        data["input"] = data["input"][:80]
    return json.dumps(data).encode() if isinstance(data, dict) else body


@settings(FUZZ, max_examples=150)
@given(route=st.sampled_from(sorted(JSON_ROUTES)), data=st.data())
def test_fuzzed_json_bodies(rest, route, data):
    base, session = rest
    body = _limit_text(data.draw(_json_bodies(JSON_ROUTES[route])))
    content_type = data.draw(st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]))
    reply = session.post(base + route, data=body, headers={"content-type": content_type}, timeout=120)
    check_reply(reply, f"POST {route} {body[:200]!r}")


@settings(FUZZ, max_examples=120)
@given(route=st.sampled_from(sorted(UPLOAD_ROUTES)), data=st.data())
def test_fuzzed_multipart_bodies(rest, route, data):
    base, session = rest
    content_type, body = data.draw(multipart_body(UPLOAD_ROUTES[route], audio_bytes(SAMPLES)))
    reply = session.post(base + route, data=body, headers={"content-type": content_type}, timeout=120)
    check_reply(reply, f"POST {route} multipart {body[:200]!r}")


QUERY = st.dictionaries(st.sampled_from(["source_language", "filename", "wait_for_completion", "page_size",
                                         "page_token", "state", "type", "target_language", "x"]),
                        st.one_of(st.text(string.printable, max_size=20), st.sampled_from(["en", "true", "-1", "99"])),
                        max_size=3)


@settings(FUZZ, max_examples=80)
@given(route=st.sampled_from(sorted(UPLOAD_ROUTES)), body=audio_bytes(SAMPLES), query=QUERY,
       content_type=st.sampled_from(["audio/wav", "audio/flac", "video/mp4", "text/plain", "text/html",
                                     "application/octet-stream", "multipart/form-data", ""]))
def test_fuzzed_raw_uploads(rest, route, body, query, content_type):
    base, session = rest
    if query.get("wait_for_completion"):
        query["wait_for_completion"] = "false"
    reply = session.post(base + route, data=body, params=query, headers={"content-type": content_type}, timeout=120)
    check_reply(reply, f"POST {route} raw {content_type} {query}")


@settings(FUZZ, max_examples=100)
@given(route=st.sampled_from(GET_ROUTES), segment=st.one_of(st.text(max_size=40), st.just("a" * 3000)), query=QUERY)
def test_fuzzed_get_routes(rest, route, segment, query):
    base, session = rest
    path = route.format(requests.utils.quote(segment, safe=""))
    reply = session.get(base + path, params=query, timeout=60)
    check_reply(reply, f"GET {path[:200]} {query}")


@settings(FUZZ, max_examples=15)
@given(chunks=st.lists(st.binary(min_size=1, max_size=6400), min_size=1, max_size=10),
       interim=st.booleans(), rate=st.sampled_from([8000, 16000, 44100]))
def test_fuzzed_audio_into_the_real_streaming_decoder(stack, chunks, interim, rate):
    config = streaming_pb2.StreamingRecognitionConfig(encoding=streaming_pb2.AUDIO_ENCODING_LINEAR16,
                                                      sample_rate_hertz=rate, interim_results=interim)
    requests_ = [transcription_pb2.StreamingTranscribeRequest(config=config)]
    requests_ += [transcription_pb2.StreamingTranscribeRequest(audio_content=c) for c in chunks]
    with grpc.insecure_channel(f"127.0.0.1:{stack.proxy_port}") as channel:
        stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
        try:
            replies = list(stub.StreamingTranscribe(iter(requests_), timeout=60))
        except grpc.RpcError as error:
            check_error(error, f"stream of {len(chunks)} random chunks at {rate} Hz")
            return
    assert replies and replies[-1].WhichOneof("event") == "summary"


def test_zz_stack_still_transcribes_after_fuzzing(rest, jfk_flac, jfk_text):
    base, session = rest
    assert session.get(base + "/health", timeout=10).status_code == 200
    with jfk_flac.open("rb") as handle:
        reply = session.post(base + "/api/v1/transcription", files={"audio_file": ("jfk.flac", handle)},
                             data={"wait_for_completion": "true", "source_language": "en"}, timeout=300)
    assert reply.status_code == 200, reply.text
    task = reply.json()["task"]
    assert task["state"] == "TASK_STATE_COMPLETED", task
    assert wer(jfk_text, task["transcript"]["text"]) < 0.2
