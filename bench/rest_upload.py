"""REST (through Envoy) against direct gRPC for the same upload, on a real local stack.

Why this benchmark exists: REST is Envoy transcoding the gRPC contracts, so a REST upload
pays one extra hop (HTTP/1.1 into Envoy, buffering for transcoding, HTTP/2 to the proxy).
This measures what that hop costs for the seed's headline case, a 1 MB audio upload, and
compares it with the seed's own figure (5-10 s for a 1 MB upload).

Two measurements, both against the same processes ``violet up`` starts (miner, proxy, Envoy
on free ports, state in a temporary folder):

1. Task creation: the upload request itself, from the first byte sent to the task coming
   back (the file stored, the task created), N runs per path, interleaved in shuffled order
   so every path sees the same machine noise. Paths: direct gRPC to the proxy
   (``TranscriptionService.CreateTranscription``), REST with the raw body and query
   parameters, REST multipart exactly as ``curl -F`` sends it. The miner for this phase serves
   no transcription, so the tasks stay queued and no model competes for the CPU.
2. End to end: the same 1 MB file transcribed with ``wait_for_completion`` through REST and
   through gRPC (miner with tiny.en), ratio REST/gRPC.

Usage: ``python bench/rest_upload.py [--runs N] [--e2e-runs N] [--size-mb MB]``.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import grpc
import requests
from google.api import httpbody_pb2

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO))

from violet.v1 import transcription_pb2, transcription_pb2_grpc

from tests.helpers import free_port, load_pcm16, wer
from violet_grpc.server_common import CHANNEL_OPTIONS
from violet_grpc.stack import Stack, StackConfig

DEFAULT_AUDIO = REPO.parent / "shared" / "fixtures" / "jfk.flac"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
#: The seed's documented time for a 1 MB upload (DESIGN §7): the floor to beat.
SEED_UPLOAD_SECONDS = (5.0, 10.0)


def make_wav(audio: Path, size_bytes: int, folder: Path) -> bytes:
    """A 16 kHz mono WAV of about ``size_bytes``: the speech repeated."""
    pcm = load_pcm16(audio)
    frames = (pcm * (size_bytes // len(pcm) + 1))[: max(2, size_bytes - 44) // 2 * 2]
    path = folder / "upload.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(frames)
    return path.read_bytes()


def start_stack(home: Path, engines: str) -> tuple[Stack, StackConfig]:
    # The measured endpoints are public; hotkey auth (miner/validator gateways) plays no part.
    config = StackConfig(home=home, proxy_port=free_port(), miner_port=free_port(), rest_port=free_port(),
                         admin_port=free_port(), engines=engines, extra_env={"VIOLET_AUTH": "off"})
    stack = Stack(config)
    stack.start(timeout=180)
    return stack, config


class Paths:
    """The ways to send one upload; each call returns the task as a dict-like summary."""

    def __init__(self, config: StackConfig, data: bytes) -> None:
        self.data = data
        self.rest = f"http://127.0.0.1:{config.rest_port}"
        self.session = requests.Session()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{config.proxy_port}", options=CHANNEL_OPTIONS)
        self.stub = transcription_pb2_grpc.TranscriptionServiceStub(self.channel)

    def close(self) -> None:
        self.session.close()
        self.channel.close()

    def grpc(self, wait: bool = False) -> tuple[str, str]:
        request = transcription_pb2.CreateTranscriptionRequest(
            audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=self.data), source_language="en",
            filename="upload.wav", wait_for_completion=wait)
        task = self.stub.CreateTranscription(request, timeout=600).task
        return task.task_id, task.transcript.text

    def rest_raw(self, wait: bool = False) -> tuple[str, str]:
        params = {"source_language": "en", "filename": "upload.wav"}
        if wait:
            params["wait_for_completion"] = "true"
        reply = self.session.post(f"{self.rest}/api/v1/transcription", data=self.data, params=params,
                                  headers={"content-type": "audio/wav"}, timeout=600)
        reply.raise_for_status()
        task = reply.json()["task"]
        return task["task_id"], task.get("transcript", {}).get("text", "")

    def rest_multipart(self, wait: bool = False) -> tuple[str, str]:
        fields = {"source_language": "en", **({"wait_for_completion": "true"} if wait else {})}
        reply = self.session.post(f"{self.rest}/api/v1/transcription", data=fields, timeout=600,
                                  files={"audio_file": ("upload.wav", self.data, "audio/wav")})
        reply.raise_for_status()
        task = reply.json()["task"]
        return task["task_id"], task.get("transcript", {}).get("text", "")


def measure(paths: dict[str, Callable[[], tuple[str, str]]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call for every path, rounds interleaved in shuffled order."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    order = list(paths)
    for round_index in range(warmup + runs):
        random.shuffle(order)
        for name in order:
            started = time.perf_counter()
            paths[name]()
            elapsed = time.perf_counter() - started
            if round_index >= warmup:
                times[name].append(elapsed)
    return times


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]


def table(title: str, times: dict[str, list[float]], baseline: str) -> None:
    base = statistics.median(times[baseline])
    print(f"\n{title}")
    print(f"  {'path':<34} {'runs':>4} {'median ms':>10} {'p90 ms':>9} {'ratio':>7}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<34} {len(values):>4} {median * 1000:>10.1f} {p90(values) * 1000:>9.1f} {median / base:>7.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="speech to repeat into the upload")
    parser.add_argument("--size-mb", type=float, default=1.0, help="upload size in MB (10^6 bytes) [1]")
    parser.add_argument("--runs", type=int, default=30, help="measured uploads per path [30]")
    parser.add_argument("--e2e-runs", type=int, default=5, help="measured transcriptions per path [5]")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="violet-bench-rest-") as tmp:
        folder = Path(tmp)
        data = make_wav(args.audio, int(args.size_mb * 1_000_000), folder)
        seconds_of_audio = (len(data) - 44) / 32000
        print(f"upload: {len(data) / 1e6:.2f} MB WAV ({seconds_of_audio:.1f} s of speech)")

        # 1. Creation: no miner serves transcription, so tasks stay queued and the CPU is quiet.
        stack, config = start_stack(folder / "create", engines="tts")
        try:
            paths = Paths(config, data)
            creation = measure({"gRPC direct (proxy)": paths.grpc, "REST raw body (Envoy)": paths.rest_raw,
                                "REST multipart, curl -F (Envoy)": paths.rest_multipart},
                               runs=args.runs, warmup=3)
            paths.close()
        finally:
            stack.stop()
        table(f"1. upload returns the task ({args.runs} runs each, interleaved)", creation, "gRPC direct (proxy)")
        rest_median = statistics.median(creation["REST multipart, curl -F (Envoy)"])
        low, high = SEED_UPLOAD_SECONDS
        print(f"  seed yardstick: 1 MB upload {low:g}-{high:g} s; REST multipart median {rest_median * 1000:.1f} ms "
              f"= {low / rest_median:,.0f}x faster than the seed's best case")

        # 2. End to end: the same file transcribed (tiny.en), waiting for completion.
        stack, config = start_stack(folder / "e2e", engines="asr")
        try:
            paths = Paths(config, data)
            texts: list[str] = []

            def keep(call: Callable[[bool], tuple[str, str]]) -> Callable[[], tuple[str, str]]:
                def run() -> tuple[str, str]:
                    result = call(True)
                    texts.append(result[1])
                    return result
                return run

            e2e = measure({"gRPC direct, wait_for_completion": keep(paths.grpc),
                           "REST raw, wait_for_completion": keep(paths.rest_raw)},
                          runs=args.e2e_runs, warmup=1)
            paths.close()
        finally:
            stack.stop()
        table(f"2. end to end: {seconds_of_audio:.0f} s of speech transcribed ({args.e2e_runs} runs each)", e2e,
              "gRPC direct, wait_for_completion")
        reference = " ".join([JFK_TEXT] * max(1, round(seconds_of_audio / 11.0)))
        errors = [wer(reference, text) for text in texts if text]
        if errors and args.audio == DEFAULT_AUDIO:
            print(f"  WER of the transcripts against the repeated reference: median {statistics.median(errors):.3f}")
        grpc_median = statistics.median(e2e["gRPC direct, wait_for_completion"])
        rest_median = statistics.median(e2e["REST raw, wait_for_completion"])
        print(f"  REST/gRPC end-to-end ratio {rest_median / grpc_median:.3f} "
              f"(REST adds {(rest_median - grpc_median) * 1000:+.0f} ms on {grpc_median:.2f} s)")


if __name__ == "__main__":
    main()
