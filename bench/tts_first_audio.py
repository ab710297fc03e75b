"""Speech synthesis: time to first audio over gRPC against Piper's own first chunk.

Why this benchmark exists: ``SynthesisService.Synthesize`` streams sentence by sentence so a
listener hears the first sentence while the rest is computed. Its yardstick is Piper itself:
``PiperVoice.synthesize`` (the piper-tts library, same voice file, no Violet code) yields its
first chunk when the first sentence is done. Over gRPC the same sentence also crosses the
proxy and the miner (signed call), is encoded (WAV) and framed. Rounds alternate the two
paths so noise on this shared machine hits both; the ratio is of medians.

    python bench/tts_first_audio.py [--rounds 10]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:  # run from a checkout without installing the package
        sys.path.insert(0, str(path))

import grpc  # noqa: E402
from piper import PiperVoice  # noqa: E402
from violet.v1 import resources_pb2, synthesis_pb2, synthesis_pb2_grpc  # noqa: E402

from violet_grpc.miner.engines.piper_engine import default_voice_path  # noqa: E402
from violet_grpc.server_common import CHANNEL_OPTIONS  # noqa: E402

GOAL = 1.2
TEXT = ("Violet turns speech into text and text into speech. The first sentence should be heard "
        "before the rest is ready. A third sentence makes the whole reply longer than the first one.")


def piper_first_chunk(voice: PiperVoice, text: str = TEXT) -> tuple[float, float]:
    """Seconds to Piper's first chunk and to its last (the whole text), in this process."""
    started = time.perf_counter()
    first = 0.0
    for index, _ in enumerate(voice.synthesize(text)):
        if index == 0:
            first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def grpc_first_audio(address: str, text: str = TEXT) -> tuple[float, float]:
    """Seconds from the call to the first audio message, and to the stream's end."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        await channel.channel_ready()
        stub = synthesis_pb2_grpc.SynthesisServiceStub(channel)
        request = synthesis_pb2.SynthesizeRequest(text=text, format=resources_pb2.AUDIO_FORMAT_WAV)
        started = time.perf_counter()
        first = 0.0
        async for reply in stub.Synthesize(request):
            if not first and reply.chunk.audio_content:
                first = time.perf_counter() - started
        return first, time.perf_counter() - started


def run(address: str, rounds: int, log=print) -> dict[str, list[tuple[float, float]]]:
    """Alternates Piper and gRPC ``rounds`` times after one warm-up each."""
    voice = PiperVoice.load(str(default_voice_path()))
    piper_first_chunk(voice)
    asyncio.run(grpc_first_audio(address))
    times: dict[str, list[tuple[float, float]]] = {"piper first chunk (in process)": [],
                                                   "gRPC Synthesize first audio": []}
    for _ in range(rounds):
        times["piper first chunk (in process)"].append(piper_first_chunk(voice))
        times["gRPC Synthesize first audio"].append(asyncio.run(grpc_first_audio(address)))
    for name, values in times.items():
        log(f"  {name:32} first {statistics.median(v[0] for v in values) * 1000:7.1f} ms   "
            f"whole text {statistics.median(v[1] for v in values) * 1000:7.1f} ms")
    return times


def main(argv: list[str] | None = None) -> None:
    from stack_streaming import start_stack

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="violet-bench-tts-") as home:
        stack, config = start_stack(Path(home), engines="tts", rest=False)
        try:
            times = run(f"127.0.0.1:{config.proxy_port}", args.rounds)
        finally:
            stack.stop()
    base = statistics.median(v[0] for v in times["piper first chunk (in process)"])
    over = statistics.median(v[0] for v in times["gRPC Synthesize first audio"])
    print(f"time to first audio: gRPC/piper = {over / base:.2f}x (goal <= {GOAL:.1f}x: "
          f"{'met' if over / base <= GOAL else 'MISSED'})")


if __name__ == "__main__":
    main()
