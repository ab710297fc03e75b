"""A user streams speech to the proxy and watches the transcript appear live."""
from __future__ import annotations

import pytest
from violet.v1 import tasks_pb2, tasks_pb2_grpc

from tests.helpers import load_pcm16, wer
from violet_grpc.client import VioletClient


async def test_realtime_stream_gives_interims_then_accurate_final(local_net, jfk_flac, jfk_text):
    pcm = load_pcm16(jfk_flac)
    audio_seconds = len(pcm) / 32000
    async with VioletClient(local_net.proxy_address) as client:
        events = [e async for e in client.stream_pcm(pcm, realtime=True, language="en")]
    started = events[0].received - 0.0
    kinds = [e.kind for e in events]
    assert kinds[-1] == "summary"
    interims = [e for e in events if e.kind == "interim"]
    finals = [e for e in events if e.kind == "final"]
    assert interims, "no interim results"
    # Interims arrive while audio is still being sent, not after the end.
    first_interim_delay = interims[0].received - started
    assert first_interim_delay < audio_seconds - 2.0
    final_text = " ".join(e.text for e in finals)
    assert wer(jfk_text, final_text) <= 0.10, final_text
    summary = events[-1].message.summary
    assert summary.task_id
    assert summary.final_result_count == len(finals)
    assert abs(summary.audio_seconds - audio_seconds) < 0.1
    # Final words carry timestamps inside the audio, in order.
    words = [w for e in finals for w in e.message.final_result.segment.words]
    assert words and all(0 <= w.start_seconds <= w.end_seconds <= audio_seconds + 0.1 for w in words)
    assert [w.start_seconds for w in words] == sorted(w.start_seconds for w in words)


async def test_stream_is_stored_as_completed_task_with_audio(local_net, jfk_flac, jfk_text):
    pcm = load_pcm16(jfk_flac)
    async with VioletClient(local_net.proxy_address) as client:
        events = [e async for e in client.stream_pcm(pcm, realtime=False)]
        summary = events[-1].message.summary
        task = await client.get_task(summary.task_id)
        assert task.state == 5  # COMPLETED
        assert task.type == 2  # STREAMING_TRANSCRIPTION
        assert wer(jfk_text, task.transcript.text) <= 0.10
        stored = await client.get_file(task.input_file_id)
        assert stored.content_type == "audio/wav"
        assert stored.data[44:] == pcm  # the relayed samples, byte for byte, behind a WAV header
    assert summary.language == "en"


async def test_resampled_stream_at_48k_still_transcribes(local_net, jfk_flac, jfk_text):
    pcm48 = load_pcm16(jfk_flac, rate=48000)
    async with VioletClient(local_net.proxy_address) as client:
        events = [e async for e in client.stream_pcm(pcm48, sample_rate=48000, realtime=False, interim_results=False)]
    assert not [e for e in events if e.kind == "interim"]
    text = " ".join(e.text for e in events if e.kind == "final")
    assert wer(jfk_text, text) <= 0.10, text


async def test_watch_task_streams_states_until_final(local_net, jfk_flac):
    async with VioletClient(local_net.proxy_address) as client:
        task = await client.transcribe_file(jfk_flac, language="en", wait=False)
        stub = tasks_pb2_grpc.TasksServiceStub(client.channel)
        states = [r.task.state async for r in stub.WatchTask(tasks_pb2.WatchTaskRequest(task_id=task.task_id))]
    assert states[-1] == 5
    assert states == sorted(states), f"states went backwards: {states}"


@pytest.mark.parametrize("chunk_ms", [20, 250])
async def test_chunk_sizes_do_not_matter(local_net, jfk_flac, jfk_text, chunk_ms):
    pcm = load_pcm16(jfk_flac)
    async with VioletClient(local_net.proxy_address) as client:
        events = [e async for e in client.stream_pcm(pcm, realtime=False, chunk_ms=chunk_ms, interim_results=False)]
    text = " ".join(e.text for e in events if e.kind == "final")
    assert wer(jfk_text, text) <= 0.10, text
