"""Speech synthesis and video transcription through the proxy, as users call them."""
from __future__ import annotations

import time

import grpc
import pytest
from google.api import httpbody_pb2
from violet.v1 import (
    resources_pb2,
    synthesis_pb2,
    synthesis_pb2_grpc,
    transcription_pb2,
    transcription_pb2_grpc,
)

from tests.helpers import speech_video, wer
from violet_grpc.audio.decode import decode_file
from violet_grpc.miner.engines.asr import TranscribeOptions

SENTENCES = [
    "The weather is lovely today.",
    "Please send the report before noon.",
    "Our train leaves from platform four.",
    "She bought fresh bread at the market.",
    "Thank you for listening to this message.",
]
TEXT = " ".join(SENTENCES)
COMPLETED = resources_pb2.TASK_STATE_COMPLETED


async def test_streamed_speech_starts_early_and_transcribes_back(local_net, engines):
    async with local_net.channel() as channel:
        stub = synthesis_pb2_grpc.SynthesisServiceStub(channel)
        started = time.monotonic()
        arrivals, audio, task_id = [], bytearray(), ""
        async for reply in stub.Synthesize(synthesis_pb2.SynthesizeRequest(text=TEXT)):
            arrivals.append(time.monotonic() - started)
            audio += reply.chunk.audio_content
            task_id = reply.task_id or task_id
    assert len(arrivals) == len(SENTENCES)
    # The first sentence arrives well before the last one is synthesised.
    assert arrivals[0] < arrivals[-1] * 0.6
    transcript = engines.asr.transcribe(decode_file(bytes(audio)).samples, TranscribeOptions(language="en"))
    assert wer(TEXT, transcript.text) <= 0.15, transcript.text
    assert task_id


@pytest.mark.parametrize("fmt, content_type", [
    (resources_pb2.AUDIO_FORMAT_WAV, "audio/wav"),
    (resources_pb2.AUDIO_FORMAT_MP3, "audio/mpeg"),
    (resources_pb2.AUDIO_FORMAT_OGG_OPUS, "audio/ogg"),
])
async def test_speech_task_audio_is_fetched_in_the_asked_format(local_net, engines, fmt, content_type):
    async with local_net.channel() as channel:
        stub = synthesis_pb2_grpc.SynthesisServiceStub(channel)
        reply = await stub.CreateSpeech(synthesis_pb2.CreateSpeechRequest(
            text=TEXT, format=fmt, wait_for_completion=True))
        assert reply.task.state == COMPLETED, reply.task.failure_reason
        audio = (await stub.GetSpeechAudio(synthesis_pb2.GetSpeechAudioRequest(file_id=reply.task.result_file_id))).audio
    assert audio.content_type == content_type
    transcript = engines.asr.transcribe(decode_file(audio.data).samples, TranscribeOptions(language="en"))
    assert wer(TEXT, transcript.text) <= 0.15, transcript.text


@pytest.mark.parametrize("kwargs, reason", [
    ({"text": "   "}, "EMPTY_TEXT"),
    ({"text": "word " * 200_000}, "TEXT_TOO_LONG"),
    ({"text": "Hello.", "voice": "no-such-voice"}, "UNKNOWN_VOICE"),
    ({"text": "Hello.", "speed": 9.0}, "INVALID_SPEED"),
    ({"text": "Hello.", "format": 77}, "UNSUPPORTED_FORMAT"),
])
async def test_bad_speech_requests_are_refused_before_anything_is_stored(local_net, kwargs, reason):
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status
    from violet.v1 import tasks_pb2, tasks_pb2_grpc

    async with local_net.channel() as channel:
        stub = synthesis_pb2_grpc.SynthesisServiceStub(channel)
        for call in (stub.CreateSpeech(synthesis_pb2.CreateSpeechRequest(**kwargs)),):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            info = error_details_pb2.ErrorInfo()
            rpc_status.from_call(caught.value).details[0].Unpack(info)
            assert info.reason == reason
        with pytest.raises(grpc.aio.AioRpcError):
            async for _ in stub.Synthesize(synthesis_pb2.SynthesizeRequest(**kwargs)):
                pass
        listing = await tasks_pb2_grpc.TasksServiceStub(channel).ListTasks(tasks_pb2.ListTasksRequest())
    assert not listing.tasks


async def test_video_audio_track_is_transcribed(local_net, jfk_flac, jfk_text):
    video = speech_video(decode_file(jfk_flac).samples)
    async with local_net.channel() as channel:
        stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
        reply = await stub.CreateVideoTranscription(transcription_pb2.CreateVideoTranscriptionRequest(
            video=httpbody_pb2.HttpBody(content_type="video/mp4", data=video), filename="speech.mp4",
            wait_for_completion=True))
    assert reply.task.state == COMPLETED, reply.task.failure_reason
    assert reply.task.type == resources_pb2.TASK_TYPE_VIDEO_TRANSCRIPTION
    assert wer(jfk_text, reply.task.transcript.text) <= 0.15, reply.task.transcript.text


@pytest.mark.parametrize("case, reason", [("no audio", "NO_AUDIO_TRACK"), ("audio only", "NOT_A_VIDEO"),
                                          ("corrupt", "UNSUPPORTED_AUDIO")])
async def test_bad_videos_are_refused(local_net, jfk_flac, case, reason):
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    samples = decode_file(jfk_flac).samples[:16000]
    data = {
        "no audio": lambda: speech_video(samples, with_audio=False),
        "audio only": lambda: jfk_flac.read_bytes(),
        "corrupt": lambda: b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8,
    }[case]()
    async with local_net.channel() as channel:
        stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateVideoTranscription(transcription_pb2.CreateVideoTranscriptionRequest(
                video=httpbody_pb2.HttpBody(content_type="video/mp4", data=data)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_details_pb2.ErrorInfo()
    rpc_status.from_call(caught.value).details[0].Unpack(info)
    assert info.reason == reason, caught.value.details()
