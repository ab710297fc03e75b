"""Relaying a live transcription stream to a miner, with failover.

Audio goes to the miner as it arrives and results come back as the miner sends them; the
proxy adds no buffering. It keeps a copy of the audio relayed so far: if the miner fails
mid-stream, another miner gets the config and the whole audio again (as fast as it can
take it), then the live audio. Results the client already has are dropped from the new
miner's answer (by time: finals ending before the last forwarded final's end), so the
client sees one continuous transcript without repeated words.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from violet.v1 import miner_pb2, resources_pb2, streaming_pb2, transcription_pb2

from violet_grpc import errors
from violet_grpc.audio.decode import stream_resampler
from violet_grpc.convert import segment_from_proto
from violet_grpc.miner.stream_runner import parse_config
from violet_grpc.proxy.miner_registry import MinerHandle, MinerRegistry
from violet_grpc.proxy.orchestrator import Orchestrator
from violet_grpc.rpc_errors import from_rpc_error
from violet_grpc.tasks import TaskSpec, TaskType
from violet_grpc.transcripts import Segment, Transcript, join_segments, transcript_to_json

log = logging.getLogger(__name__)

_REPLAY_CHUNK = 64 * 1024
#: Codes after which a different miner may well succeed.
_FAILOVER_CODES = {"UNAVAILABLE", "INTERNAL", "UNKNOWN", "CANCELLED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"}
_BYTES_PER_SAMPLE = {streaming_pb2.AUDIO_ENCODING_LINEAR16: 2, streaming_pb2.AUDIO_ENCODING_MULAW: 1}
_WAV_FORMAT_TAG = {streaming_pb2.AUDIO_ENCODING_LINEAR16: 1, streaming_pb2.AUDIO_ENCODING_MULAW: 7}

Response = transcription_pb2.StreamingTranscribeResponse


@dataclass
class _StreamState:
    """What the relay has sent and received so far."""

    config: streaming_pb2.StreamingRecognitionConfig
    audio: bytearray = field(default_factory=bytearray)
    client_done: bool = False
    outbound: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    segments: list[Segment] = field(default_factory=list)
    forwarded_until: float = 0.0
    utterance_offset: int = 0
    last_utterance: int = -1
    language: str = ""
    failed_miners: list[tuple[str, str]] = field(default_factory=list)


class StreamRelay:
    """Serves TranscriptionService.StreamingTranscribe for the proxy."""

    def __init__(self, orchestrator: Orchestrator, registry: MinerRegistry, *, max_stream_seconds: float, max_failovers: int = 3) -> None:
        self.orchestrator = orchestrator
        self.registry = registry
        self.max_stream_seconds = max_stream_seconds
        self.max_failovers = max_failovers
        self.active = 0

    async def relay(self, requests: AsyncIterator[Any]) -> AsyncIterator[Response]:
        """Runs one client stream to the end, yielding what the client should receive."""
        state = _StreamState(config=await _read_config(requests))
        _check_servable(state.config, self.registry.offered("languages"))
        self.active += 1
        pump = asyncio.create_task(self._pump(requests, state))
        try:
            miner: MinerHandle | None = None
            tried: set[str] = set()
            while True:
                miner = self._pick(tried, state)
                tried.add(miner.miner_id)
                try:
                    async for response in self._run_on(miner, state):
                        yield response
                    break
                except errors.VioletError as exc:
                    if exc.code_name not in _FAILOVER_CODES or len(state.failed_miners) >= self.max_failovers:
                        raise
                    log.warning("stream failed on miner %s (%s); failing over", miner.miner_id, exc.code_name)
                    state.failed_miners.append((miner.miner_id, f"{exc.code_name}: {exc.message}"))
                    self.registry.mark_unreachable(miner)
            if pump.done() and pump.exception():
                raise pump.exception()  # type: ignore[misc]
            yield await self._store(state, miner)
        finally:
            self.active -= 1
            pump.cancel()

    def _pick(self, tried: set[str], state: _StreamState) -> MinerHandle:
        miner = self.registry.pick(TaskType.STREAMING_TRANSCRIPTION, exclude=tried)
        if miner is None:
            what = "another miner to continue the stream" if state.failed_miners else "a miner for streaming transcription"
            raise errors.Unavailable(f"no miner is available: could not find {what}", reason="NO_MINER_AVAILABLE")
        return miner

    async def _pump(self, requests: AsyncIterator[Any], state: _StreamState) -> None:
        """Copies the client's audio into the relay log and the current miner's queue."""
        limit = int(self.max_stream_seconds * state.config.sample_rate_hertz * _bytes_per_frame(state.config))
        try:
            async for message in requests:
                if message.WhichOneof("streaming_request") != "audio_content":
                    raise errors.InvalidArgument("only the first message of a stream may carry a config",
                                                 reason="CONFIG_REPEATED", metadata={"field": "config"})
                state.audio += message.audio_content
                if len(state.audio) > limit:
                    raise errors.ResourceExhausted(f"the stream is longer than the {self.max_stream_seconds:.0f} s limit",
                                                   reason="STREAM_TOO_LONG")
                state.outbound.put_nowait(message.audio_content)
        finally:
            state.client_done = True
            state.outbound.put_nowait(None)

    async def _run_on(self, miner: MinerHandle, state: _StreamState) -> AsyncIterator[Response]:
        """Streams to one miner, replaying what came before; raises VioletError on failure."""
        state.outbound = asyncio.Queue()
        replay = bytes(state.audio)
        if state.client_done:
            state.outbound.put_nowait(None)
        miner.in_flight += 1
        call = miner.stub.StreamingTranscribe(_miner_requests(state.config, replay, state.outbound))
        try:
            async for reply in call:
                response = self._translate(reply, state)
                if response is not None:
                    yield response
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        finally:
            miner.in_flight -= 1
            call.cancel()

    def _translate(self, reply: miner_pb2.MinerServiceStreamingTranscribeResponse, state: _StreamState) -> Response | None:
        """Turns a miner message into a client message, dropping what the client already has."""
        kind = reply.WhichOneof("event")
        if kind == "summary":
            state.language = reply.summary.language
            return None
        if kind == "interim":
            if reply.interim.end_seconds <= state.forwarded_until:
                return None
            interim = streaming_pb2.InterimResult()
            interim.CopyFrom(reply.interim)
            interim.utterance_index = self._utterance(state, reply.interim.utterance_index)
            return Response(interim=interim)
        if kind == "utterance_end":
            if reply.utterance_end.time_seconds <= state.forwarded_until and state.failed_miners:
                return None
            end = streaming_pb2.UtteranceEnd()
            end.CopyFrom(reply.utterance_end)
            end.utterance_index = self._utterance(state, reply.utterance_end.utterance_index)
            return Response(utterance_end=end)
        if kind == "final_result":
            return self._final(reply.final_result, state)
        return None

    def _final(self, final: streaming_pb2.FinalResult, state: _StreamState) -> Response | None:
        segment = segment_from_proto(final.segment)
        if segment.end <= state.forwarded_until + 1e-3:
            return None
        if segment.start < state.forwarded_until and segment.words:
            words = tuple(w for w in segment.words if w.end > state.forwarded_until + 1e-3)
            if not words:
                return None
            segment = Segment(text=" ".join(w.text.strip() for w in words), start=words[0].start, end=segment.end, words=words)
        state.forwarded_until = segment.end
        state.segments.append(segment)
        message = streaming_pb2.FinalResult(utterance_index=self._utterance(state, final.utterance_index))
        message.segment.CopyFrom(final.segment)
        if segment.text != final.segment.text.strip() or segment.start != final.segment.start_seconds:
            from violet_grpc.convert import segment_to_proto

            message.segment.CopyFrom(segment_to_proto(segment))
        return Response(final_result=message)

    def _utterance(self, state: _StreamState, miner_index: int) -> int:
        """Keeps utterance indices increasing across a failover."""
        index = miner_index + state.utterance_offset
        if index < state.last_utterance:
            state.utterance_offset += state.last_utterance - index
            index = state.last_utterance
        state.last_utterance = index
        return index

    async def _store(self, state: _StreamState, miner: MinerHandle) -> Response:
        """Stores the audio and transcript as a completed task; returns the summary message."""
        config = state.config
        audio_seconds = len(state.audio) / max(1, config.sample_rate_hertz * _bytes_per_frame(config))
        transcript = Transcript(
            text=join_segments(state.segments), language=state.language or config.language_code or "",
            language_probability=1.0 if config.language_code else 0.0, duration=audio_seconds,
            segments=tuple(state.segments),
        )
        spec = TaskSpec(type=TaskType.STREAMING_TRANSCRIPTION, source_language=config.language_code,
                        word_timestamps=config.enable_word_time_offsets, initial_prompt=config.initial_prompt)
        task = await self.orchestrator.record_live(
            spec, miner.miner_id, {"transcript": transcript_to_json(transcript)},
            payload=_wav_bytes(config, bytes(state.audio)), content_type="audio/wav", filename="stream.wav",
            failed=state.failed_miners,
        )
        return Response(summary=streaming_pb2.StreamSummary(
            task_id=task.task_id, audio_seconds=audio_seconds, final_result_count=len(state.segments),
            transcript_text=transcript.text, language=transcript.language, miner_id=miner.miner_id,
            failover_count=len(state.failed_miners),
        ))


async def _read_config(requests: AsyncIterator[Any]) -> streaming_pb2.StreamingRecognitionConfig:
    try:
        first = await anext(requests)
    except StopAsyncIteration:
        raise errors.InvalidArgument("the stream is empty: send a config message first, then audio",
                                     reason="EMPTY_STREAM") from None
    if first.WhichOneof("streaming_request") != "config":
        raise errors.InvalidArgument("the first message of a stream must carry the config",
                                     reason="CONFIG_NOT_FIRST", metadata={"field": "config"})
    config = first.config
    if config.encoding not in _BYTES_PER_SAMPLE:
        raise errors.InvalidArgument("config.encoding must be LINEAR16 or MULAW", reason="UNSUPPORTED_ENCODING",
                                     metadata={"field": "config.encoding"})
    if not 8000 <= config.sample_rate_hertz <= 48000:
        raise errors.InvalidArgument("config.sample_rate_hertz must be between 8000 and 48000",
                                     reason="UNSUPPORTED_SAMPLE_RATE", metadata={"field": "config.sample_rate_hertz"})
    if config.audio_channel_count not in (0, 1, 2):
        raise errors.InvalidArgument("config.audio_channel_count must be 1 or 2", reason="UNSUPPORTED_CHANNELS",
                                     metadata={"field": "config.audio_channel_count"})
    return config


def _check_servable(config: streaming_pb2.StreamingRecognitionConfig, languages: set[str]) -> None:
    """Refuses up front what every miner would refuse, with the miners' own checks.

    A miner that ends a stream while the proxy is still sending audio is seen here as
    INTERNAL (grpc-python's asyncio client overwrites the server's status when a write races
    the end of the call: grpc/grpc#36066), which would fail the stream over and take a healthy
    miner out of rotation for one client's bad config.
    """
    parsed = parse_config(config, tuple(sorted(languages)))
    stream_resampler(parsed.encoding, parsed.sample_rate, parsed.channels)
    if config.endpointing_silence_ms < 0:
        raise errors.InvalidArgument("config.endpointing_silence_ms must not be negative",
                                     reason="INVALID_STREAM_OPTIONS", metadata={"field": "config.endpointing_silence_ms"})


async def _miner_requests(
    config: streaming_pb2.StreamingRecognitionConfig, replay: bytes, outbound: asyncio.Queue[bytes | None]
) -> AsyncIterator[miner_pb2.MinerServiceStreamingTranscribeRequest]:
    Request = miner_pb2.MinerServiceStreamingTranscribeRequest
    yield Request(config=config)
    for start in range(0, len(replay), _REPLAY_CHUNK):
        yield Request(audio_content=replay[start:start + _REPLAY_CHUNK])
    while (chunk := await outbound.get()) is not None:
        yield Request(audio_content=chunk)


def _bytes_per_frame(config: streaming_pb2.StreamingRecognitionConfig) -> int:
    return _BYTES_PER_SAMPLE.get(config.encoding, 2) * max(1, config.audio_channel_count)


def _wav_bytes(config: streaming_pb2.StreamingRecognitionConfig, data: bytes) -> bytes:
    """Wraps the relayed samples in a WAV header (PCM or mu-law), byte for byte as sent."""
    channels = max(1, config.audio_channel_count)
    width = _BYTES_PER_SAMPLE[config.encoding]
    rate = config.sample_rate_hertz
    data = data[: len(data) - len(data) % (width * channels)]
    fmt = struct.pack("<HHIIHH", _WAV_FORMAT_TAG[config.encoding], channels, rate, rate * width * channels,
                      width * channels, width * 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body
