"""The official ``openai`` package, unchanged, against Violet's REST API through Envoy."""
from __future__ import annotations

import io
import json
import re
import wave
from pathlib import Path

import av
import pytest
import requests

from tests.helpers import wer
from violet_grpc.stack import StackConfig

openai = pytest.importorskip("openai", reason="the openai package is a dev dependency (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def client(stack: StackConfig) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{stack.rest_port}/v1", api_key="unused", max_retries=0,
                         timeout=120)


def _cues(text: str) -> list[tuple[str, str]]:
    return re.findall(r"(\d\d:\d\d:\d\d[.,]\d{3}) --> (\d\d:\d\d:\d\d[.,]\d{3})", text)


def test_transcription_json(client: openai.OpenAI, jfk_flac: Path, jfk_text: str) -> None:
    with jfk_flac.open("rb") as audio:
        result = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert wer(jfk_text, result.text) <= 0.10, result.text


def test_transcription_text_srt_vtt(client: openai.OpenAI, jfk_flac: Path, jfk_text: str) -> None:
    text = client.audio.transcriptions.create(model="whisper-1", file=jfk_flac, response_format="text",
                                              language="en", temperature=0.2)
    assert isinstance(text, str) and wer(jfk_text, text) <= 0.10, text

    srt = client.audio.transcriptions.create(model="whisper-1", file=jfk_flac, response_format="srt")
    blocks = [b for b in srt.strip().split("\n\n") if b]
    assert blocks and blocks[0].startswith("1\n")
    assert all("," in start for start, _ in _cues(srt)) and _cues(srt)
    spoken = " ".join(" ".join(b.splitlines()[2:]) for b in blocks)
    assert wer(jfk_text, spoken) <= 0.10, srt

    vtt = client.audio.transcriptions.create(model="whisper-1", file=jfk_flac, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n")
    cues = _cues(vtt)
    assert cues and all("." in start for start, _ in cues)
    assert cues == sorted(cues)


def test_transcription_verbose_json_with_words(client: openai.OpenAI, jfk_flac: Path, jfk_text: str) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=jfk_flac, response_format="verbose_json",
                                                timestamp_granularities=["word", "segment"], prompt="Kennedy")
    assert result.task == "transcribe"
    assert result.language == "english"
    assert 10.5 < result.duration < 11.5
    assert wer(jfk_text, result.text) <= 0.10
    assert result.segments and [s.id for s in result.segments] == list(range(len(result.segments)))
    assert all(0 <= s.start <= s.end <= result.duration + 0.5 for s in result.segments)
    assert wer(jfk_text, " ".join(s.text for s in result.segments)) <= 0.10
    assert len(result.words) >= 18
    assert result.words[0].word.lower().startswith("and")
    assert all(w.start <= w.end for w in result.words)


def test_transcription_without_words_has_no_word_list(client: openai.OpenAI, jfk_flac: Path) -> None:
    raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=jfk_flac,
                                                               response_format="verbose_json")
    body = json.loads(raw.text)
    assert "words" not in body and body["segments"]
    # The task behind the answer stays visible through Violet's own API.
    task_id = raw.headers["x-violet-task-id"]
    base = str(raw.http_request.url).split("/v1/")[0]
    task = requests.get(f"{base}/api/v1/tasks/{task_id}", timeout=10).json()["task"]
    assert task["state"] == "TASK_STATE_COMPLETED" and task["type"] == "TASK_TYPE_TRANSCRIPTION"


def test_transcription_errors(client: openai.OpenAI, jfk_flac: Path) -> None:
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.audio.transcriptions.create(model="whisper-1", file=jfk_flac, response_format="xml")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"not audio at all " * 50))


def test_speech_wav(client: openai.OpenAI) -> None:
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello world.", response_format="wav")
    data = speech.read()
    with wave.open(io.BytesIO(data)) as audio:
        assert audio.getnchannels() == 1 and audio.getsampwidth() == 2
        # The header's sizes are exact (not the streaming "until the end" sentinel).
        assert audio.getnframes() * 2 + 44 == len(data)
        seconds = audio.getnframes() / audio.getframerate()
    assert 0.4 < seconds < 5.0


@pytest.mark.parametrize(("response_format", "content_type", "codec"), [
    ("mp3", "audio/mpeg", "mp3"),
    ("opus", "audio/ogg", "opus"),
])
def test_speech_compressed(client: openai.OpenAI, response_format: str, content_type: str, codec: str) -> None:
    raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="nova", input="Hello world.",
                                                       response_format=response_format, speed=1.25)
    assert raw.headers["content-type"] == content_type
    with av.open(io.BytesIO(raw.content)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith(codec)
        assert sum(frame.samples for frame in container.decode(stream)) > 0


def test_speech_pcm_and_default_format(client: openai.OpenAI) -> None:
    pcm = client.audio.speech.with_raw_response.create(model="tts-1", voice="echo", input="Hi.", response_format="pcm")
    assert pcm.headers["content-type"].startswith("audio/L16;rate=")
    assert len(pcm.content) % 2 == 0 and len(pcm.content) > 1000
    default = client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input="Hi.")
    assert default.headers["content-type"] == "audio/mpeg"  # OpenAI's default is mp3


def test_speech_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", response_format="flac")
    with pytest.raises(openai.BadRequestError, match="voice"):
        client.audio.speech.create(model="tts-1", voice="no-such-voice", input="Hi.")
    with pytest.raises(openai.BadRequestError, match="speed"):
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=9)
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="")
