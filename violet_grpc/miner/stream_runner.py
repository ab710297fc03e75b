"""Runs one live transcription stream on a miner.

Audio arrives on the event loop; decoding runs on a worker thread. Whatever audio arrived
while the previous decode ran is handed over in one piece, so a slow decode never builds a
backlog: latency stays flat however long the stream runs.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from violet_grpc import errors
from violet_grpc.audio.decode import AudioEncoding, stream_resampler
from violet_grpc.miner.engines.asr import StreamEvent, StreamOptions, StreamSession

_END = object()

#: Wire encoding numbers (violet.v1.AudioEncoding) → decoder encodings.
WIRE_ENCODINGS = {1: AudioEncoding.LINEAR16, 2: AudioEncoding.MULAW}


@dataclass(frozen=True)
class StreamConfig:
    """A validated stream config in domain terms."""

    encoding: AudioEncoding
    sample_rate: int
    channels: int
    options: StreamOptions


def parse_config(config: Any, languages: tuple[str, ...]) -> StreamConfig:
    """Validates a ``StreamingRecognitionConfig`` message; raises InvalidArgument with the field."""
    if config.encoding not in WIRE_ENCODINGS:
        raise errors.InvalidArgument(
            "config.encoding must be LINEAR16 or MULAW",
            reason="UNSUPPORTED_ENCODING",
            metadata={"field": "config.encoding", "value": str(config.encoding)},
        )
    if not 8000 <= config.sample_rate_hertz <= 48000:
        raise errors.InvalidArgument(
            "config.sample_rate_hertz must be between 8000 and 48000",
            reason="UNSUPPORTED_SAMPLE_RATE",
            metadata={"field": "config.sample_rate_hertz", "value": str(config.sample_rate_hertz)},
        )
    language = config.language_code.strip().lower() or None
    if language == "auto":
        language = None
    if language and languages and language.split("-")[0] not in languages:
        raise errors.InvalidArgument(
            f"language {language!r} is not supported; supported: {', '.join(languages)}",
            reason="UNSUPPORTED_LANGUAGE",
            metadata={"field": "config.language_code", "supported": ",".join(languages)},
        )
    options = StreamOptions(
        language=language.split("-")[0] if language else None,
        interim_results=config.interim_results,
        word_timestamps=config.enable_word_time_offsets,
        initial_prompt=config.initial_prompt or None,
        hotwords=" ".join(config.phrase_hints) or None,
        endpoint_silence_ms=config.endpointing_silence_ms or 300,
    )
    return StreamConfig(WIRE_ENCODINGS[config.encoding], config.sample_rate_hertz, max(1, config.audio_channel_count), options)


async def run_stream(
    config: StreamConfig,
    audio: AsyncIterator[bytes],
    session: StreamSession,
    executor: Executor,
    *,
    max_seconds: float,
) -> AsyncIterator[list[StreamEvent]]:
    """Feeds audio to a stream session and yields the events of each decode step.

    The session's final events come last; the caller builds the summary from the session.
    """
    loop = asyncio.get_running_loop()
    resampler = stream_resampler(config.encoding, config.sample_rate, config.channels)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    reader = asyncio.create_task(_read_audio(audio, resampler, queue, max_seconds))
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            failure = next((item for item in batch if isinstance(item, BaseException)), None)
            if failure is not None:
                raise failure
            pcm = [b for b in batch if isinstance(b, np.ndarray)]
            if pcm:
                yield await loop.run_in_executor(executor, session.accept, np.concatenate(pcm))
            if any(item is _END for item in batch):
                yield await loop.run_in_executor(executor, session.finish)
                return
    finally:
        reader.cancel()


async def _read_audio(audio: AsyncIterator[bytes], resampler: Any, queue: asyncio.Queue[Any], max_seconds: float) -> None:
    received = 0.0
    try:
        async for chunk in audio:
            samples = resampler.push(chunk)
            received += len(samples) / 16000
            if received > max_seconds:
                raise errors.ResourceExhausted(
                    f"the stream is longer than the {max_seconds:.0f} s limit",
                    reason="STREAM_TOO_LONG",
                    metadata={"limit_seconds": str(max_seconds)},
                )
            if len(samples):
                queue.put_nowait(samples)
        tail = resampler.flush()
        if len(tail):
            queue.put_nowait(tail)
        queue.put_nowait(_END)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # handed to the consumer, which raises it in the RPC
        queue.put_nowait(exc)
