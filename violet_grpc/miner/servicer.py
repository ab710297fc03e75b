"""The Miner gRPC service: wire messages in, engine calls on worker threads, wire messages out."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor
from typing import Any

import grpc
from violet.v1 import miner_pb2, miner_pb2_grpc, resources_pb2, streaming_pb2, synthesis_pb2

from violet_grpc import __version__, errors
from violet_grpc.audio import encode as audio_encode
from violet_grpc.audio.decode import decode_file
from violet_grpc.convert import segment_to_proto, transcript_to_proto
from violet_grpc.miner.capacity import Slots
from violet_grpc.miner.engine_loader import Engines
from violet_grpc.miner.engines.asr import Final, Interim, TranscribeOptions, UtteranceEnd
from violet_grpc.miner.engines.tts import SynthesisOptions, validate_text
from violet_grpc.miner.stream_runner import parse_config, run_stream
from violet_grpc.rpc_errors import translate_errors

#: Wire AudioFormat numbers → encoder formats (UNSPECIFIED means WAV).
AUDIO_FORMATS = {
    resources_pb2.AUDIO_FORMAT_UNSPECIFIED: audio_encode.AudioFormat.WAV,
    resources_pb2.AUDIO_FORMAT_WAV: audio_encode.AudioFormat.WAV,
    resources_pb2.AUDIO_FORMAT_OGG_OPUS: audio_encode.AudioFormat.OGG_OPUS,
    resources_pb2.AUDIO_FORMAT_MP3: audio_encode.AudioFormat.MP3,
    resources_pb2.AUDIO_FORMAT_PCM_S16LE: audio_encode.AudioFormat.PCM_S16LE,
}


class MinerServicer(miner_pb2_grpc.MinerServiceServicer):
    """Serves one miner's engines."""

    def __init__(
        self,
        engines: Engines,
        executor: Executor,
        slots: Slots,
        *,
        miner_id: str,
        max_file_seconds: float = 4 * 3600,
        max_stream_seconds: float = 3600,
    ) -> None:
        self.engines = engines
        self.executor = executor
        self.slots = slots
        self.miner_id = miner_id
        self.max_file_seconds = max_file_seconds
        self.max_stream_seconds = max_stream_seconds

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    @translate_errors
    async def GetCapabilities(self, request: miner_pb2.GetCapabilitiesRequest, context: Any) -> miner_pb2.GetCapabilitiesResponse:
        return miner_pb2.GetCapabilitiesResponse(capabilities=self.capabilities())

    def capabilities(self) -> miner_pb2.MinerCapabilities:
        """What this miner serves right now (also sent with heartbeats)."""
        asr, tts, translator = self.engines.asr, self.engines.tts, self.engines.translator
        caps = miner_pb2.MinerCapabilities(
            miner_id=self.miner_id,
            max_slots=self.slots.limit,
            free_slots=self.slots.free,
            version=__version__,
            device=(asr or tts or translator).device if (asr or tts or translator) else "cpu",
        )
        if asr is not None:
            caps.task_types.extend([
                resources_pb2.TASK_TYPE_TRANSCRIPTION,
                resources_pb2.TASK_TYPE_STREAMING_TRANSCRIPTION,
                resources_pb2.TASK_TYPE_VIDEO_TRANSCRIPTION,
            ])
            caps.asr_model = asr.name
            caps.asr_languages.extend(asr.languages())
        if tts is not None:
            caps.task_types.append(resources_pb2.TASK_TYPE_SPEECH_SYNTHESIS)
            caps.voices.extend(
                miner_pb2.VoiceInfo(voice_id=v.voice_id, language=v.language, sample_rate_hertz=v.sample_rate, engine=v.engine)
                for v in tts.voices()
            )
        if translator is not None:
            from violet_grpc.miner import documents

            caps.task_types.append(resources_pb2.TASK_TYPE_DOCUMENT_TRANSLATION)
            caps.translation_pairs.extend(
                miner_pb2.TranslationPair(source_language=p.source, target_language=p.target) for p in translator.pairs()
            )
            caps.document_formats.extend(documents.file_extension(f).lstrip(".") for f in documents.DocumentFormat)
        return caps

    # -- transcription --------------------------------------------------------------------

    @translate_errors
    async def Transcribe(self, request: miner_pb2.TranscribeRequest, context: Any) -> miner_pb2.TranscribeResponse:
        asr = _require(self.engines.asr, "transcription")
        if not request.content:
            raise errors.InvalidArgument("content is empty: send the audio or video file's bytes",
                                         reason="EMPTY_AUDIO", metadata={"field": "content"})
        language = request.language_code.strip().lower()
        options = TranscribeOptions(
            language=None if language in ("", "auto") else language.split("-")[0],
            word_timestamps=request.enable_word_time_offsets,
            initial_prompt=request.initial_prompt or None,
            hotwords=" ".join(request.phrase_hints) or None,
        )
        async with self.slots.hold():
            started = time.perf_counter()
            audio = await self._run(lambda: decode_file(request.content, max_seconds=self.max_file_seconds))
            transcript = await self._run(asr.transcribe, audio.samples, options)
            elapsed = time.perf_counter() - started
        return miner_pb2.TranscribeResponse(
            transcript=transcript_to_proto(transcript), processing_seconds=elapsed, model=asr.name
        )

    @translate_errors
    async def StreamingTranscribe(
        self, request_iterator: AsyncIterator[miner_pb2.MinerServiceStreamingTranscribeRequest], context: Any
    ) -> AsyncIterator[miner_pb2.MinerServiceStreamingTranscribeResponse]:
        asr = _require(self.engines.asr, "transcription")
        first = await _first_message(request_iterator)
        config = parse_config(first.config, tuple(asr.languages()))
        async with self.slots.hold():
            session = await self._run(asr.open_stream, config.options)
            finals: list[str] = []
            async for events in run_stream(
                config, _audio_of(request_iterator), session, self.executor, max_seconds=self.max_stream_seconds
            ):
                for event in events:
                    if isinstance(event, Final):
                        finals.append(event.segment.text.strip())
                    message = _event_to_proto(event, config.options.interim_results)
                    if message is not None:
                        yield message
            summary = streaming_pb2.StreamSummary(
                audio_seconds=session.audio_seconds,
                final_result_count=len(finals),
                transcript_text=" ".join(t for t in finals if t),
                language=session.language,
                miner_id=self.miner_id,
            )
            yield miner_pb2.MinerServiceStreamingTranscribeResponse(summary=summary)

    # -- synthesis ------------------------------------------------------------------------

    @translate_errors
    async def Synthesize(
        self, request: miner_pb2.MinerServiceSynthesizeRequest, context: Any
    ) -> AsyncIterator[miner_pb2.MinerServiceSynthesizeResponse]:
        tts = _require(self.engines.tts, "speech synthesis")
        text = validate_text(request.text)
        options = SynthesisOptions(voice=request.voice or None, speed=request.speed or 1.0)
        fmt = AUDIO_FORMATS.get(request.format)
        if fmt is None:
            raise errors.InvalidArgument("format is not a known AudioFormat", reason="UNSUPPORTED_FORMAT",
                                         metadata={"field": "format"})
        async with self.slots.hold():
            async for chunk in _iterate_in_thread(self.executor, lambda: _encoded_chunks(tts, text, options, fmt)):
                yield miner_pb2.MinerServiceSynthesizeResponse(chunk=chunk)

    # -- translation ----------------------------------------------------------------------

    @translate_errors
    async def TranslateDocument(
        self, request: miner_pb2.TranslateDocumentRequest, context: Any
    ) -> miner_pb2.TranslateDocumentResponse:
        from violet_grpc.miner import documents
        from violet_grpc.miner.engines.translate import LanguagePair, check_pair

        translator = _require(self.engines.translator, "document translation")
        pair = LanguagePair(request.source_language.strip().lower(), request.target_language.strip().lower())
        check_pair(translator, pair)
        fmt = documents.detect_format(request.filename or None, request.content_type or None, request.content)
        async with self.slots.hold():
            started = time.perf_counter()
            content = await self._run(lambda: documents.translate_document(request.content, fmt, pair, translator))
        return miner_pb2.TranslateDocumentResponse(
            content=content,
            content_type=documents.content_type(fmt),
            processing_seconds=time.perf_counter() - started,
            engine=translator.name,
        )


def _require(engine: Any, what: str) -> Any:
    if engine is None:
        raise errors.Unimplemented(f"this miner does not serve {what}", reason="CAPABILITY_NOT_SERVED",
                                   metadata={"capability": what})
    return engine


async def _first_message(requests: AsyncIterator[Any]) -> Any:
    try:
        first = await anext(requests)
    except StopAsyncIteration:
        raise errors.InvalidArgument("the stream is empty: send a config message first, then audio",
                                     reason="EMPTY_STREAM") from None
    if first.WhichOneof("streaming_request") != "config":
        raise errors.InvalidArgument("the first message of a stream must carry the config",
                                     reason="CONFIG_NOT_FIRST", metadata={"field": "config"})
    return first


async def _audio_of(requests: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    async for message in requests:
        if message.WhichOneof("streaming_request") != "audio_content":
            raise errors.InvalidArgument("only the first message of a stream may carry a config",
                                         reason="CONFIG_REPEATED", metadata={"field": "config"})
        yield message.audio_content


def _event_to_proto(event: Any, interim_results: bool) -> miner_pb2.MinerServiceStreamingTranscribeResponse | None:
    Response = miner_pb2.MinerServiceStreamingTranscribeResponse
    if isinstance(event, Interim):
        if not interim_results:
            return None
        return Response(interim=streaming_pb2.InterimResult(
            text=event.text, stability=event.stability, start_seconds=event.start,
            end_seconds=event.end, utterance_index=getattr(event, "utterance_index", 0)))
    if isinstance(event, Final):
        return Response(final_result=streaming_pb2.FinalResult(
            segment=segment_to_proto(event.segment), utterance_index=event.utterance_index))
    if isinstance(event, UtteranceEnd):
        return Response(utterance_end=streaming_pb2.UtteranceEnd(
            time_seconds=event.time, utterance_index=event.utterance_index))
    raise errors.Internal(f"unknown stream event {event!r}")


def _encoded_chunks(tts: Any, text: str, options: SynthesisOptions, fmt: audio_encode.AudioFormat) -> Iterator[synthesis_pb2.AudioChunk]:
    """Synthesises sentence by sentence, encoding each as it comes (runs on a worker thread)."""
    encoder: audio_encode.StreamingEncoder | None = None
    start = 0.0
    for chunk in tts.synthesize_stream(text, options):
        if encoder is None:
            encoder = audio_encode.StreamingEncoder(fmt, chunk.sample_rate)
        data = encoder.push(chunk.samples)
        duration = len(chunk.samples) / chunk.sample_rate
        if chunk.is_last:
            data += encoder.close()
        yield synthesis_pb2.AudioChunk(
            audio_content=data, sequence=chunk.index, text=chunk.text, start_seconds=start,
            duration_seconds=duration, content_type=encoder.content_type,
            sample_rate_hertz=chunk.sample_rate, is_last=chunk.is_last)
        start += duration


async def _iterate_in_thread(executor: Executor, make: Any) -> AsyncIterator[Any]:
    """Drives a blocking generator on a worker thread, yielding each item as soon as it exists."""
    loop = asyncio.get_running_loop()
    iterator = await loop.run_in_executor(executor, make)
    done = object()
    while True:
        item = await loop.run_in_executor(executor, next, iterator, done)
        if item is done:
            return
        yield item
