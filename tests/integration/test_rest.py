"""Every documented REST endpoint, over HTTP through the real Envoy, proxy and miner processes.

One stack (``violet up`` on free ports) serves the whole module; a second, bare Envoy with
tiny limits in front of the same proxy shows the 413 and 429 replies.
"""
from __future__ import annotations

import io
import json
import shlex
import shutil
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import grpc
import numpy as np
import pytest
import requests
from violet.v1 import system_pb2, system_pb2_grpc

from tests.helpers import free_port, load_pcm16, wer
from violet_grpc import envoy
from violet_grpc.stack import StackConfig

TIMEOUT = 60
FINAL = ("TASK_STATE_COMPLETED", "TASK_STATE_FAILED")


# -- helpers ---------------------------------------------------------------------------------


def base(stack: StackConfig) -> str:
    return f"http://127.0.0.1:{stack.rest_port}"


def assert_error(reply: requests.Response, status: int, code: int, reason: str | None = None) -> dict:
    """Envoy's error replies are JSON ``{"code": <gRPC code>, "message": …}`` with the HTTP status."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    body = reply.json()
    assert body["code"] == code, body
    assert body["message"], body
    if reason is not None:
        infos = [d for d in body.get("details", []) if d["@type"].endswith("google.rpc.ErrorInfo")]
        assert infos and infos[0]["reason"] == reason, body
        assert infos[0]["domain"] == "violet.network"
    return body


def wait_task(stack: StackConfig, task_id: str, timeout: float = TIMEOUT) -> dict:
    """Polls GET /api/v1/tasks/{id} until the task is COMPLETED or FAILED."""
    deadline = time.monotonic() + timeout
    while True:
        reply = requests.get(f"{base(stack)}/api/v1/tasks/{task_id}", timeout=10)
        assert reply.status_code == 200, reply.text
        task = reply.json()["task"]
        if task["state"] in FINAL or time.monotonic() > deadline:
            return task
        time.sleep(0.2)


def assert_jfk(task: dict, jfk_text: str) -> None:
    assert task["state"] == "TASK_STATE_COMPLETED", task.get("failure_reason")
    assert wer(jfk_text, task["transcript"]["text"]) <= 0.10, task["transcript"]["text"]


@pytest.fixture(scope="module")
def wav_dir(tmp_path_factory: pytest.TempPathFactory, jfk_flac: Path) -> Path:
    """A folder holding ``test.wav``: the JFK clip as a real 16 kHz PCM WAV."""
    folder = tmp_path_factory.mktemp("rest-audio")
    with wave.open(str(folder / "test.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(load_pcm16(jfk_flac))
    return folder


@pytest.fixture(scope="module")
def wav_bytes(wav_dir: Path) -> bytes:
    return (wav_dir / "test.wav").read_bytes()


@pytest.fixture(scope="module")
def video_bytes(wav_dir: Path, jfk_flac: Path) -> bytes:
    """A tiny MPEG-4 video (black frames) with the JFK speech as its AAC audio track."""
    path = wav_dir / "jfk.mp4"
    pcm = np.frombuffer(load_pcm16(jfk_flac), dtype="<i2")
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=2)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        audio.layout = "mono"
        black = np.zeros((32, 32, 3), dtype=np.uint8)
        for _ in range(int(len(pcm) / 16000 * 2) + 1):
            out.mux(video.encode(av.VideoFrame.from_ndarray(black, format="rgb24")))
        out.mux(video.encode())
        for start in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[start:start + 1024].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode())
    return path.read_bytes()


# -- system ----------------------------------------------------------------------------------


def test_health(stack: StackConfig) -> None:
    reply = requests.get(f"{base(stack)}/health", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["status"] == "SERVING_STATUS_SERVING"
    assert body["version"]


def test_status(stack: StackConfig) -> None:
    body = requests.get(f"{base(stack)}/api/v1/status", timeout=10).json()
    assert body["miners_online"] >= 1
    miner = body["miners"][0]
    assert miner["online"] is True
    assert "TASK_TYPE_TRANSCRIPTION" in miner["task_types"]
    # Proto field names, every primitive printed (int64 as a JSON string, per proto3 JSON).
    assert int(body["queue_depth"]) >= 0
    assert body["task_store_backend"] == "sqlite" and body["file_store_backend"] == "local"
    assert body["uptime_seconds"] > 0
    assert isinstance(body["tasks_by_state"], list)


def test_native_grpc_passes_through_envoy(stack: StackConfig) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{stack.rest_port}") as channel:
        reply = system_pb2_grpc.SystemServiceStub(channel).Check(system_pb2.CheckRequest(), timeout=10)
    assert reply.status == system_pb2.SERVING_STATUS_SERVING


def test_cors_preflight(stack: StackConfig) -> None:
    reply = requests.options(f"{base(stack)}/api/v1/transcription", timeout=10, headers={
        "Origin": "http://example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "http://example.com"
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert "content-disposition" in reply.headers["access-control-expose-headers"]


# -- transcription and files -------------------------------------------------------------------


def test_seed_curl_example(stack: StackConfig, wav_dir: Path, wav_bytes: bytes, jfk_text: str) -> None:
    """The seed's README command, run as written, then the task, its files and its transcript."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    command = (f'curl -X POST http://127.0.0.1:{stack.rest_port}/api/v1/transcription '
               f'-F "audio_file=@test.wav" -F "source_language=en"')
    done = subprocess.run(command, shell=True, cwd=wav_dir, capture_output=True, timeout=TIMEOUT, check=True)
    task = json.loads(done.stdout)["task"]
    assert task["type"] == "TASK_TYPE_TRANSCRIPTION"
    assert task["state"] in ("TASK_STATE_QUEUED", "TASK_STATE_ASSIGNED", "TASK_STATE_PROCESSING")
    assert task["source_language"] == "en" and task["filename"] == "test.wav"
    assert task["input_content_type"].startswith("audio/")

    task = wait_task(stack, task["task_id"])
    assert_jfk(task, jfk_text)
    assert task["result_file_id"] and task["result_content_type"] == "application/json"

    # The stored upload comes back byte for byte, with its content type …
    got = requests.get(f"{base(stack)}/api/v1/files/{task['input_file_id']}", timeout=10)
    assert got.status_code == 200
    assert got.content == wav_bytes
    assert got.headers["content-type"] == task["input_content_type"]
    assert "content-disposition" not in got.headers
    # … and as a named attachment from /download.
    download = requests.get(f"{base(stack)}/api/v1/files/{task['input_file_id']}/download", timeout=10)
    assert download.status_code == 200 and download.content == wav_bytes
    assert download.headers["content-disposition"].startswith("attachment;")
    assert 'filename="test.wav"' in download.headers["content-disposition"]
    # The result file is the transcript as JSON.
    result = requests.get(f"{base(stack)}/api/v1/files/{task['result_file_id']}", timeout=10)
    assert result.headers["content-type"] == "application/json"
    assert wer(jfk_text, result.json()["text"]) <= 0.10


def test_multipart_upload_waits_for_completion(stack: StackConfig, wav_bytes: bytes, jfk_text: str) -> None:
    reply = requests.post(f"{base(stack)}/api/v1/transcription", timeout=TIMEOUT,
                          files={"audio_file": ("speech.wav", wav_bytes, "audio/wav")},
                          data={"source_language": "en", "wait_for_completion": "true"})
    assert reply.status_code == 200, reply.text
    assert_jfk(reply.json()["task"], jfk_text)


def test_raw_body_with_query_parameters(stack: StackConfig, wav_bytes: bytes, jfk_text: str) -> None:
    reply = requests.post(
        f"{base(stack)}/api/v1/transcription", data=wav_bytes, timeout=TIMEOUT,
        headers={"content-type": "audio/wav"},
        params={"source_language": "en", "wait_for_completion": "true", "filename": "raw.wav",
                "enable_word_time_offsets": "true", "idempotency_key": "rest-raw-1"},
    )
    assert reply.status_code == 200, reply.text
    task = reply.json()["task"]
    assert_jfk(task, jfk_text)
    assert task["filename"] == "raw.wav" and task["input_content_type"] in ("audio/wav", "audio/x-wav")
    words = [w for s in task["transcript"]["segments"] for w in s["words"]]
    assert len(words) >= 15 and all(w["end_seconds"] >= w["start_seconds"] for w in words)
    # The same idempotency key returns the same task rather than a new one.
    again = requests.post(f"{base(stack)}/api/v1/transcription", data=wav_bytes, timeout=TIMEOUT,
                          headers={"content-type": "audio/wav"}, params={"idempotency_key": "rest-raw-1"})
    assert again.json()["task"]["task_id"] == task["task_id"]


def test_video_transcription(stack: StackConfig, video_bytes: bytes, wav_bytes: bytes, jfk_text: str) -> None:
    reply = requests.post(f"{base(stack)}/api/v1/video-transcription", timeout=TIMEOUT,
                          files={"video_file": ("jfk.mp4", video_bytes, "video/mp4")},
                          data={"source_language": "en", "wait_for_completion": "true"})
    assert reply.status_code == 200, reply.text
    task = reply.json()["task"]
    assert task["type"] == "TASK_TYPE_VIDEO_TRANSCRIPTION"
    assert_jfk(task, jfk_text)
    # Audio sent to the video endpoint is refused with the reason.
    wrong = requests.post(f"{base(stack)}/api/v1/video-transcription", timeout=TIMEOUT,
                          files={"video_file": ("test.wav", wav_bytes, "audio/wav")})
    assert_error(wrong, 400, 3, "NOT_A_VIDEO")


def test_upload_errors(stack: StackConfig, wav_bytes: bytes) -> None:
    url = f"{base(stack)}/api/v1/transcription"
    no_file = requests.post(url, data={"source_language": "en"}, files={"notes": ("a.txt", b"hi", "text/plain")},
                            timeout=10)
    assert_error(no_file, 400, 3, "MISSING_FILE_PART")
    empty = requests.post(url, data=b"", headers={"content-type": "audio/wav"}, timeout=10)
    assert_error(empty, 400, 3, "EMPTY_UPLOAD")
    not_audio = requests.post(url, data=b"this is not audio" * 100, headers={"content-type": "audio/wav"}, timeout=10)
    assert_error(not_audio, 400, 3)
    broken_form = requests.post(url, data=b"--x\r\nnot a form", timeout=10,
                                headers={"content-type": "multipart/form-data; boundary=x"})
    assert broken_form.status_code == 400 and broken_form.json()["code"] == 3
    unknown_query = requests.post(url, params={"colour": "blue"}, data=wav_bytes, timeout=10,
                                  headers={"content-type": "audio/wav"})
    assert_error(unknown_query, 400, 3)


def test_missing_resources_are_404(stack: StackConfig) -> None:
    assert_error(requests.get(f"{base(stack)}/api/v1/tasks/no-such-task", timeout=10), 404, 5, "TASK_NOT_FOUND")
    assert_error(requests.get(f"{base(stack)}/api/v1/files/no-such-file", timeout=10), 404, 5)
    assert_error(requests.get(f"{base(stack)}/api/v1/files/no-such-file/download", timeout=10), 404, 5)
    assert_error(requests.get(f"{base(stack)}/api/v1/tts/audio/no-such-file", timeout=10), 404, 5)


def test_unknown_route_is_404(stack: StackConfig) -> None:
    body = assert_error(requests.get(f"{base(stack)}/api/v1/nothing-here", timeout=10), 404, 5)
    assert "/api/v1/nothing-here" in body["message"]
    assert_error(requests.post(f"{base(stack)}/api/v2/transcription", data=b"x", timeout=10), 404, 5)
    # A known path with the wrong method is not a route either.
    assert_error(requests.delete(f"{base(stack)}/api/v1/tasks", timeout=10), 404, 5)


# -- speech ----------------------------------------------------------------------------------


def test_tts_then_audio(stack: StackConfig) -> None:
    reply = requests.post(f"{base(stack)}/api/v1/tts", timeout=TIMEOUT, json={
        "text": "Hello world. This is Violet speaking.", "format": "AUDIO_FORMAT_WAV", "wait_for_completion": True})
    assert reply.status_code == 200, reply.text
    task = reply.json()["task"]
    assert task["type"] == "TASK_TYPE_SPEECH_SYNTHESIS" and task["state"] == "TASK_STATE_COMPLETED", task
    audio = requests.get(f"{base(stack)}/api/v1/tts/audio/{task['result_file_id']}", timeout=10)
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF" and audio.content[8:12] == b"WAVE"
    with av.open(io.BytesIO(audio.content)) as container:
        seconds = sum(frame.samples / frame.sample_rate for frame in container.decode(audio=0))
    assert 1.0 < seconds < 10.0
    assert_error(requests.post(f"{base(stack)}/api/v1/tts", json={"text": ""}, timeout=10), 400, 3, "EMPTY_TEXT")


def test_tts_enum_names_and_bad_json(stack: StackConfig) -> None:
    url = f"{base(stack)}/api/v1/tts"
    assert_error(requests.post(url, data="{not json", headers={"content-type": "application/json"}, timeout=10), 400, 3)
    assert_error(requests.post(url, json={"text": "Hi.", "format": "AUDIO_FORMAT_FLAC"}, timeout=10), 400, 3)
    # Unknown JSON body fields are ignored (newer clients may send more); unknown query
    # parameters are refused (see test_upload_errors).
    assert requests.post(url, json={"text": "Hi.", "colour": "blue"}, timeout=10).status_code == 200
    assert_error(requests.post(url, json={"text": "Hi.", "speed": 9}, timeout=10), 400, 3, "INVALID_SPEED")
    assert_error(requests.post(url, json={"text": "x" * 5001}, timeout=10), 400, 3, "TEXT_TOO_LONG")
    # Enum values may be sent as names (any case) or numbers.
    for fmt in ("AUDIO_FORMAT_MP3", "audio_format_mp3", 3):
        reply = requests.post(url, json={"text": "Hi.", "format": fmt}, timeout=10)
        assert reply.status_code == 200, reply.text
        assert reply.json()["task"]["audio_format"] == "AUDIO_FORMAT_MP3"


# -- translation -----------------------------------------------------------------------------


def test_document_translation(stack: StackConfig) -> None:
    if "translate" not in stack.engines.split(",") or shutil.which("apertium") is None:
        pytest.skip("apertium is not installed (apt-get install apertium-eng-spa)")
    url = f"{base(stack)}/api/v1/document-translation"
    document = b"Hello world.\n\nThe house is big.\n"
    reply = requests.post(url, timeout=TIMEOUT, files={"document_file": ("notes.txt", document, "text/plain")},
                          data={"source_language": "en", "target_language": "es"})
    assert reply.status_code == 200, reply.text
    task = wait_task(stack, reply.json()["task"]["task_id"])
    assert task["type"] == "TASK_TYPE_DOCUMENT_TRANSLATION"
    assert task["state"] == "TASK_STATE_COMPLETED", task["failure_reason"]
    translated = requests.get(f"{base(stack)}/api/v1/files/{task['result_file_id']}", timeout=10)
    assert translated.headers["content-type"].startswith("text/plain")
    assert "Hola" in translated.text and "casa" in translated.text
    download = requests.get(f"{base(stack)}/api/v1/files/{task['result_file_id']}/download", timeout=10)
    assert "attachment" in download.headers["content-disposition"]
    missing = requests.post(url, timeout=10, files={"document_file": ("notes.txt", document, "text/plain")},
                            data={"source_language": "en"})
    assert_error(missing, 400, 3, "MISSING_FIELD")
    no_file = requests.post(url, timeout=10, data={"source_language": "en", "target_language": "es"},
                            files={"other": ("x.txt", b"x", "text/plain")})
    assert_error(no_file, 400, 3, "MISSING_FILE_PART")


# -- task listing ----------------------------------------------------------------------------


def test_task_pagination_and_filters(stack: StackConfig) -> None:
    url = f"{base(stack)}/api/v1/tasks"
    created = []
    for n in range(5):
        reply = requests.post(f"{base(stack)}/api/v1/tts", json={"text": f"Page test {n}."}, timeout=10)
        created.append(reply.json()["task"]["task_id"])
    everything = requests.get(url, params={"page_size": 1000}, timeout=10).json()
    assert everything["next_page_token"] == ""
    all_ids = [t["task_id"] for t in everything["tasks"]]
    assert set(created) <= set(all_ids) and len(all_ids) >= 6

    seen, token, pages = [], "", 0
    while True:
        params = {"page_size": 2, **({"page_token": token} if token else {})}
        page = requests.get(url, params=params, timeout=10).json()
        assert len(page["tasks"]) <= 2
        seen += [t["task_id"] for t in page["tasks"]]
        token, pages = page["next_page_token"], pages + 1
        if not token:
            break
    assert seen == all_ids, "every task exactly once, newest first"
    assert pages >= 3

    for state in ("TASK_STATE_COMPLETED", "5", "task_state_completed"):
        done = requests.get(url, params={"state": state, "page_size": 1000}, timeout=10).json()["tasks"]
        assert done and all(t["state"] == "TASK_STATE_COMPLETED" for t in done)
    speech = requests.get(url, params={"type": "TASK_TYPE_SPEECH_SYNTHESIS", "page_size": 1000}, timeout=10).json()
    assert set(created) <= {t["task_id"] for t in speech["tasks"]}
    assert all(t["type"] == "TASK_TYPE_SPEECH_SYNTHESIS" for t in speech["tasks"])

    assert_error(requests.get(url, params={"page_size": -1}, timeout=10), 400, 3, "INVALID_PAGE_SIZE")
    assert_error(requests.get(url, params={"page_token": "garbage!"}, timeout=10), 400, 3)
    assert_error(requests.get(url, params={"state": "SOMETIMES"}, timeout=10), 400, 3)


def test_completed_tasks_literal_route(stack: StackConfig) -> None:
    """/api/v1/tasks/completed is its own route, not GetTask with task_id "completed"."""
    reply = requests.get(f"{base(stack)}/api/v1/tasks/completed", params={"page_size": 1000}, timeout=10)
    assert reply.status_code == 200, reply.text
    tasks = reply.json()["tasks"]
    assert tasks and all(t["state"] == "TASK_STATE_COMPLETED" for t in tasks)
    times = [t["complete_time"] for t in tasks]
    assert times == sorted(times, reverse=True)
    first = requests.get(f"{base(stack)}/api/v1/tasks/completed", params={"page_size": 1}, timeout=10).json()
    assert len(first["tasks"]) == 1 and first["next_page_token"]
    assert first["tasks"][0]["task_id"] == tasks[0]["task_id"]


# -- miner and validator gateways --------------------------------------------------------------


def _gateways_signed(stack: StackConfig) -> bool:
    """Whether the stack's proxy takes only hotkey-signed gateway calls (``violet up`` with auth on).

    Unsigned REST callers are then refused before any lookup, which is what these tests
    check in that mode; the signed flows are covered by the auth tests.
    """
    reply = requests.post(f"{base(stack)}/api/v1/miner/heartbeat", json={"miner_id": "probe"}, timeout=10)
    return reply.status_code == 401


def test_miner_gateway(stack: StackConfig, wav_bytes: bytes) -> None:
    api = f"{base(stack)}/api/v1"
    foreign = requests.post(f"{base(stack)}/api/v1/tts", json={"text": "Not yours."}, timeout=10).json()["task"]
    calls = {
        "heartbeat": lambda: requests.post(f"{api}/miner/heartbeat", timeout=10, json={
            "miner_id": "rest-miner", "capabilities": {"max_slots": 1, "task_types": ["TASK_TYPE_TRANSCRIPTION"]}}),
        "list": lambda: requests.get(f"{api}/miners/rest-miner/tasks", timeout=10),
        "response": lambda: requests.post(f"{api}/miner/response", timeout=10, json={
            "task_id": foreign["task_id"], "miner_id": "rest-miner", "transcript": {"text": "stolen"}}),
        "upload": lambda: requests.post(f"{api}/miner/tts/upload-audio", data=wav_bytes, timeout=10,
                                        headers={"content-type": "audio/wav"},
                                        params={"task_id": foreign["task_id"], "miner_id": "rest-miner"}),
    }
    if _gateways_signed(stack):
        for name, call in calls.items():
            body = assert_error(call(), 401, 16, "MISSING_SIGNATURE")
            assert "signature" in body["message"], name
        return

    beat = calls["heartbeat"]()
    assert beat.status_code == 200, beat.text
    assert beat.json()["heartbeat_interval_seconds"] > 0
    held = calls["list"]()
    assert held.status_code == 200, held.text
    assert isinstance(held.json()["tasks"], list) and "next_page_token" in held.json()
    assert_error(requests.get(f"{api}/miners/never-seen/tasks", timeout=10), 400, 9, "MINER_NOT_REGISTERED")

    assert_error(calls["response"](), 403, 7, "TASK_NOT_ASSIGNED")
    unknown = requests.post(f"{api}/miner/response", timeout=10,
                            json={"task_id": "no-such-task", "miner_id": "rest-miner", "audio_file_id": "x"})
    assert_error(unknown, 403, 7, "TASK_NOT_ASSIGNED")
    assert_error(calls["upload"](), 403, 7, "TASK_NOT_ASSIGNED")
    multipart = requests.post(f"{api}/miner/tts/upload-audio", timeout=10,
                              files={"audio_file": ("a.wav", wav_bytes, "audio/wav")},
                              params={"task_id": foreign["task_id"], "miner_id": "rest-miner"})
    assert_error(multipart, 403, 7, "TASK_NOT_ASSIGNED")
    assert_error(requests.post(f"{api}/miner/heartbeat", json={}, timeout=10), 400, 3, "MISSING_FIELD")


def test_validator_gateway(stack: StackConfig) -> None:
    """Routed and answering JSON: 501 until evaluation is served, 401 unsigned once auth is on."""
    api = f"{base(stack)}/api/v1/validator"
    listed = requests.get(f"{api}/tasks", params={"validator_id": "v1"}, timeout=10)
    evaluated = requests.post(f"{api}/evaluate", timeout=10, json={
        "validator_id": "v1", "task_id": "t", "evaluations": [{"miner_id": "m", "score": 0.5}]})
    if listed.status_code == 501:
        assert_error(listed, 501, 12, "VALIDATOR_GATEWAY_UNAVAILABLE")
        assert_error(evaluated, 501, 12, "VALIDATOR_GATEWAY_UNAVAILABLE")
    elif listed.status_code == 401:
        assert_error(listed, 401, 16, "MISSING_SIGNATURE")
        assert_error(evaluated, 401, 16, "MISSING_SIGNATURE")
    else:
        assert listed.status_code == 200, listed.text
        assert isinstance(listed.json()["tasks"], list)
        assert evaluated.status_code in (200, 404), evaluated.text
        missing = requests.post(f"{api}/evaluate", json={"validator_id": "v1"}, timeout=10)
        assert_error(missing, 400, 3, "MISSING_FIELD")


# -- limits ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited_rest(stack: StackConfig) -> Iterator[str]:
    """A second Envoy in front of the same proxy with a 1 MiB body limit and 1 request/s."""
    port = free_port()
    config = envoy.write_config(stack.home / "envoy-limited.yaml", rest_port=port, proxy_port=stack.proxy_port,
                                admin_port=free_port(), max_body_mb=1, rate_limit=1, rate_burst=4)
    log = (stack.home / "logs" / "envoy-limited.log").open("ab")
    proc = subprocess.Popen(envoy.command(config), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "the limited Envoy exited; see envoy-limited.log"
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the limited Envoy did not come up"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_oversize_body_is_413(limited_rest: str, wav_bytes: bytes) -> None:
    big = wav_bytes * 4  # 1.4 MB: over the 1 MiB limit
    for _ in range(20):
        reply = requests.post(f"{limited_rest}/api/v1/transcription", data=big, timeout=10,
                              headers={"content-type": "audio/wav"})
        if reply.status_code != 429:  # the tiny rate limit may need a moment to refill
            break
        time.sleep(0.5)
    body = assert_error(reply, 413, 8)
    assert "1 MiB" in body["message"]
    multipart = requests.post(f"{limited_rest}/api/v1/transcription", timeout=10,
                              files={"audio_file": ("big.wav", big, "audio/wav")})
    assert multipart.status_code in (413, 429)


def test_rate_limit_is_429(limited_rest: str) -> None:
    replies = [requests.get(f"{limited_rest}/health", timeout=10) for _ in range(8)]
    limited = [r for r in replies if r.status_code == 429]
    assert limited, [r.status_code for r in replies]
    body = assert_error(limited[0], 429, 8)
    assert "too many requests" in body["message"]
    assert limited[0].headers["x-local-rate-limit"] == "true"


def test_body_limit_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``violet up`` renders its config in the launcher, so VIOLET_REST_MAX_BODY_MB applies there."""
    monkeypatch.setenv("VIOLET_REST_MAX_BODY_MB", "2")
    text = envoy.write_config(tmp_path / "envoy.yaml", rest_port=8000, proxy_port=50051, admin_port=9901).read_text()
    assert f"max_request_body_size: {2 * 1024 * 1024}" in text
    assert "--base-id" in envoy.command(tmp_path / "envoy.yaml")
    assert envoy.command(tmp_path / "envoy.yaml")[-1] == "9901"


def test_deploy_config_is_rendered_from_the_template(capsys: pytest.CaptureFixture[str]) -> None:
    """deploy/envoy.yaml is the template rendered by the command in its header (regenerate it if this fails)."""
    committed = (Path(__file__).resolve().parents[2] / "deploy" / "envoy.yaml").read_text()
    command = next(line for line in committed.splitlines() if "python -m violet_grpc.envoy" in line)
    argv = shlex.split(command.split("python -m violet_grpc.envoy", 1)[1])
    at = argv.index("--write")
    envoy.main(argv[:at] + argv[at + 2:])
    rendered = capsys.readouterr().out

    def body(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("#")]

    assert body(rendered) == body(committed)
    assert "address: proxy, port_value: 50051" in committed
