"""Streaming transcription through the whole stack, against the engine alone and the baseline.

Why this benchmark exists: ``bench/streaming_latency.py`` measures the streaming decoder in
this process; users get it through gRPC client -> proxy -> miner (separate processes, the
proxy relaying every chunk and result). This runs the same real-time harness through the
stack and, in the same run and interleaved, on the engine alone and on the LocalAgreement-2
baseline, so the network's own cost shows as a difference on one clock.

The stack path reuses the harness's pieces unchanged: its feeder thread pushes ``chunk_ms``
chunks on the wall clock (``sent`` times), a gRPC request generator sends each chunk as it
comes, and every response is stamped the moment it arrives and converted back to the
engine's event types; latency, stable-word latency, first partial and WER are then computed
by the same functions against the same reference word timings.

    python bench/stack_streaming.py [--repeat 3] [--concat 1] [--chunk-ms 100]
"""
from __future__ import annotations

import argparse
import asyncio
import math
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:  # run from a checkout without installing the package
        sys.path.insert(0, str(path))

import grpc  # noqa: E402
import jiwer  # noqa: E402
import numpy as np  # noqa: E402
import streaming_latency as harness  # noqa: E402
from violet.v1 import streaming_pb2, transcription_pb2, transcription_pb2_grpc  # noqa: E402

from tests.helpers import free_port  # noqa: E402
from violet_grpc.client.client import pcm16_mono  # noqa: E402
from violet_grpc.miner.engines.asr import SAMPLE_RATE, Final, Interim, Segment, UtteranceEnd, Word  # noqa: E402
from violet_grpc.miner.engines.faster_whisper_engine import FasterWhisperEngine  # noqa: E402
from violet_grpc.server_common import CHANNEL_OPTIONS  # noqa: E402
from violet_grpc.stack import Stack, StackConfig  # noqa: E402

GOAL_MEDIAN_S = 1.0
Request = transcription_pb2.StreamingTranscribeRequest


def _event(reply: transcription_pb2.StreamingTranscribeResponse):
    """A proxy message as the engine's own event type (so the harness scores it unchanged)."""
    kind = reply.WhichOneof("event")
    if kind == "interim":
        i = reply.interim
        # stability is a float32 on the wire: 0.9 arrives as 0.8999999762, under the
        # harness's 0.9 threshold for agreed text, so it is rounded back.
        return Interim(i.text, round(i.stability, 4), i.start_seconds, i.end_seconds)
    if kind == "final_result":
        s = reply.final_result.segment
        words = tuple(Word(w.word, w.start_seconds, w.end_seconds, w.probability) for w in s.words)
        return Final(Segment(s.text.strip(), s.start_seconds, s.end_seconds, words), reply.final_result.utterance_index)
    if kind == "utterance_end":
        return UtteranceEnd(reply.utterance_end.time_seconds, reply.utterance_end.utterance_index)
    return None


async def _stream(address: str, chunks: list[np.ndarray], chunk_ms: int, language: str) -> harness._Run:
    run = harness._Run(sent=[0.0] * len(chunks))
    inbox: queue.Queue = queue.Queue()
    loop = asyncio.get_running_loop()
    config = streaming_pb2.StreamingRecognitionConfig(
        encoding=streaming_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=SAMPLE_RATE, audio_channel_count=1,
        language_code=language, interim_results=True, enable_word_time_offsets=True)

    async def requests():
        yield Request(config=config)
        while (chunk := await loop.run_in_executor(None, inbox.get)) is not None:
            yield Request(audio_content=pcm16_mono(chunk))

    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        await channel.channel_ready()
        call = transcription_pb2_grpc.TranscriptionServiceStub(channel).StreamingTranscribe(requests())
        run.start = time.perf_counter()
        feeder = threading.Thread(target=harness._feed, args=(chunks, chunk_ms / 1000, run, inbox))
        feeder.start()
        try:
            async for reply in call:
                now = time.perf_counter()
                event = _event(reply)
                if event is not None:
                    run.events.append((now, event))
        finally:
            run.end = time.perf_counter()
            feeder.join()
    return run


def measure_stack_stream(address: str, audio: np.ndarray, chunk_ms: int = 100, *, reference=None,
                         reference_text: str | None = None, language: str = "en") -> dict:
    """:func:`streaming_latency.measure_stream`'s figures for one real-time stream through the stack."""
    size = int(SAMPLE_RATE * chunk_ms / 1000)
    chunks = [audio[i:i + size] for i in range(0, audio.size, size)]
    run = asyncio.run(_stream(address, chunks, chunk_ms, language))
    latencies = harness._latencies(run, chunk_ms, reference)
    stable = harness._against_reference(run, harness._stable_words(run), reference, chunk_ms) if reference else []
    text = " ".join(e.segment.text for _, e in run.events if isinstance(e, Final))
    wer = math.nan
    if reference_text is not None:
        hypothesis = " ".join(harness.normalize(text)) or "-"
        wer = float(jiwer.wer(" ".join(harness.normalize(reference_text)), hypothesis))
    median, p90 = harness._stats(latencies)
    stable_median, stable_p90 = harness._stats(stable)
    return {
        "latencies": latencies, "median": median, "p90": p90,
        "stable_latencies": stable, "stable_median": stable_median, "stable_p90": stable_p90,
        "first_partial": harness._first_partial(run, chunk_ms, reference), "wer": wer,
        "rtf": math.nan,  # the miner's compute time is not visible from the client
        "backlog": run.end - run.sent[-1], "text": text,
        "finals": sum(isinstance(e, Final) for _, e in run.events),
    }


def run(address: str, engine: FasterWhisperEngine, audio: np.ndarray, reference_text: str, *, repeat: int,
        chunk_ms: int = 100, log: Callable[[str], None] = print) -> dict[str, list[dict]]:
    """Every system ``repeat`` times, interleaved; returns each run's figures by system."""
    reference = harness.reference_words(engine.whisper_model, audio)  # also warms the model up
    # The first decodes in a fresh miner process are slower (allocations, caches): one short
    # stream first, as any long-running miner would have had.
    measure_stack_stream(address, audio[: 3 * SAMPLE_RATE], chunk_ms)
    options = harness.StreamOptions(language="en")
    systems: dict[str, Callable[[], dict]] = {
        "violet via stack": lambda: measure_stack_stream(address, audio, chunk_ms, reference=reference,
                                                         reference_text=reference_text),
        "violet engine alone": lambda: harness.measure_stream(lambda: engine.open_stream(options), audio, chunk_ms,
                                                              reference=reference, reference_text=reference_text),
        "baseline (LA-2)": lambda: harness.measure_stream(lambda: harness.LocalAgreementBaseline(engine.whisper_model),
                                                          audio, chunk_ms, reference=reference,
                                                          reference_text=reference_text),
    }
    results: dict[str, list[dict]] = {name: [] for name in systems}
    for index in range(repeat):
        for name, measure in systems.items():
            result = measure()
            results[name].append(result)
            log(f"  [{index + 1}/{repeat}] {name:20} median {result['median']:.3f} s p90 {result['p90']:.3f} s "
                f"first partial {result['first_partial']:.3f} s WER {result['wer']:.3f}: {result['text'][:50]}")
    return results


def start_stack(home: Path, engines: str = "asr", rest: bool = True) -> tuple[Stack, StackConfig]:
    """The processes `violet up` starts (signed calls, as deployed), without the validator.

    The validator is left out because its challenge rounds would run the same model on the
    same two cores at random moments, in the middle of a measurement.
    """
    config = StackConfig(home=home, proxy_port=free_port(), miner_port=free_port(),
                         rest_port=free_port() if rest else None, admin_port=free_port(), engines=engines,
                         validator=False)
    stack = Stack(config)
    stack.start(timeout=240)
    return stack, config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=harness.DEFAULT_AUDIO)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concat", type=int, default=1, help="clip copies, 1 s silence apart")
    parser.add_argument("--chunk-ms", type=int, default=100)
    args = parser.parse_args(argv)
    engine = FasterWhisperEngine("tiny.en", device="cpu")
    clip = harness.load_audio(args.audio)
    audio = harness.concat(clip, args.concat) if args.concat > 1 else clip
    text = " ".join([harness.JFK_TEXT] * args.concat)
    with tempfile.TemporaryDirectory(prefix="violet-bench-stream-") as home:
        stack, config = start_stack(Path(home), rest=False)
        try:
            results = run(f"127.0.0.1:{config.proxy_port}", engine, audio, text, repeat=args.repeat,
                          chunk_ms=args.chunk_ms)
        finally:
            stack.stop()
    title = (f"{args.audio.name} x{args.concat} ({audio.size / SAMPLE_RATE:.1f} s), tiny.en int8, "
             f"{args.repeat} run(s) per system, {args.chunk_ms} ms chunks, real-time feed")
    print(harness._table({name: harness._pooled(runs) for name, runs in results.items()}, title))


if __name__ == "__main__":
    main()
