"""Proxy scale: many concurrent live streams through the proxy, with an engine that costs nothing.

Why this benchmark exists: a live stream holds a proxy connection for its whole length, so
the number of concurrent streams one proxy can relay (and what each costs in delay, CPU and
memory) sizes a deployment. The miner runs :class:`tests.fake_miner.EchoAsrEngine` in its own
process: every decode step answers at once with an interim whose end time marks the audio
received so far, so the client can match each answer to the chunk that completed it.

For each level (default 100, 500, 1000 streams) the client opens that many streams (starts
spread over the first second, as independent users would), sends 100 ms LINEAR16 16 kHz
chunks at real-time pace for ``--seconds``, and records, for every answered chunk sent after
the ramp, ``delay = answer received - chunk sent``. The same level is then run straight
against the miner (no proxy): that is the baseline, and ``relay delay`` is the proxy path's
delay with the direct path's median subtracted. The proxy runs as its own process, sampled
with psutil: CPU (percent of one core, over the measured window) and RSS (peak).

Caveat for this machine: client, proxy and miner share the same cores, so at high levels
the client's own work is part of both paths; the direct baseline shows how much.

    python bench/proxy_scale.py [--levels 100,500,1000] [--seconds 10]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO))

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from violet.v1 import miner_pb2, miner_pb2_grpc, streaming_pb2, transcription_pb2, transcription_pb2_grpc  # noqa: E402

from tests.helpers import free_port  # noqa: E402
from tests.procs import start_fake_miner, start_proxy, stop, wait_miners_online, wait_serving  # noqa: E402
from violet_grpc.server_common import CHANNEL_OPTIONS  # noqa: E402

GOAL_P99_MS = 50.0
GOAL_RSS_MB = 200.0
CHUNK_MS = 100
RATE = 16000
SAMPLES_PER_CHUNK = RATE * CHUNK_MS // 1000
CONFIG = streaming_pb2.StreamingRecognitionConfig(
    encoding=streaming_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=RATE, audio_channel_count=1,
    language_code="en", interim_results=True)


@dataclass
class LevelResult:
    """What one level measured on one path."""

    streams: int
    path: str
    delays: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    completed: int = 0
    proxy_cpu_percent: float = float("nan")
    proxy_rss_peak_mb: float = float("nan")
    proxy_rss_samples: list[tuple[float, float]] = field(default_factory=list)
    #: CPU (percent of one core) of the other processes over the same window, for context.
    other_cpu_percent: dict[str, float] = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.delays, q)) * 1000 if self.delays else float("nan")


class Sampler:
    """Samples a process's RSS on a thread; CPU comes from its counters between two marks."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu_mark: tuple[float, float] | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter(), self.process.memory_info().rss / 1e6))
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def mark_cpu(self) -> None:
        times = self.process.cpu_times()
        self._cpu_mark = (time.perf_counter(), times.user + times.system)

    def cpu_percent_since_mark(self) -> float:
        assert self._cpu_mark is not None
        times = self.process.cpu_times()
        wall = time.perf_counter() - self._cpu_mark[0]
        return 100.0 * (times.user + times.system - self._cpu_mark[1]) / wall

    def rss_now(self) -> float:
        return self.process.memory_info().rss / 1e6


async def _one_stream(stub, request_type, start_at: float, seconds: float, measure_from: float,
                      result: LevelResult) -> None:
    """One real-time stream; appends a delay for every answered chunk sent after ``measure_from``."""
    chunk = bytes(2 * SAMPLES_PER_CHUNK)
    sent: dict[int, float] = {}
    count = int(seconds * 1000 / CHUNK_MS)

    async def requests():
        yield request_type(config=CONFIG)
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        began = time.perf_counter()
        for index in range(count):
            delay = began + index * CHUNK_MS / 1000 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[(index + 1) * SAMPLES_PER_CHUNK] = time.perf_counter()
            yield request_type(audio_content=chunk)

    try:
        async for reply in stub.StreamingTranscribe(requests()):
            if reply.WhichOneof("event") != "interim":
                continue
            now = time.perf_counter()
            at = sent.get(round(reply.interim.end_seconds * RATE))
            if at is not None and at >= measure_from:
                result.delays.append(now - at)
        result.completed += 1
    except grpc.RpcError as exc:
        result.errors.append(f"{exc.code().name}: {exc.details()}")


async def run_level(address: str, streams: int, seconds: float, *, direct: bool, ramp: float = 1.0,
                    sampler: Sampler | None = None, others: dict[str, Sampler] | None = None,
                    channels: int = 4) -> LevelResult:
    """``streams`` concurrent streams for ``seconds`` each against the proxy (or the miner)."""
    result = LevelResult(streams, "direct to miner" if direct else "through proxy")
    opened = [grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) for _ in range(channels)]
    if direct:
        stubs = [miner_pb2_grpc.MinerServiceStub(c) for c in opened]
        request_type = miner_pb2.MinerServiceStreamingTranscribeRequest
    else:
        stubs = [transcription_pb2_grpc.TranscriptionServiceStub(c) for c in opened]
        request_type = transcription_pb2.StreamingTranscribeRequest
    rng = random.Random(streams)
    start = time.perf_counter() + 0.5
    measure_from = start + ramp + 0.5
    measure_to = start + seconds  # the first stream to end; later ones overlap less
    try:
        jobs = [asyncio.create_task(_one_stream(stubs[i % channels], request_type, start + rng.random() * ramp,
                                                seconds, measure_from, result)) for i in range(streams)]
        watched = {**(others or {}), **({"proxy": sampler} if sampler is not None else {})}
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        for watch in watched.values():
            watch.mark_cpu()
        await asyncio.sleep(max(0.0, measure_to - time.perf_counter()))
        cpu = {name: watch.cpu_percent_since_mark() for name, watch in watched.items()}
        result.proxy_cpu_percent = cpu.pop("proxy", float("nan"))
        result.other_cpu_percent = cpu
        await asyncio.gather(*jobs)
    finally:
        for channel in opened:
            await channel.close()
    if sampler is not None:
        window = [rss for t, rss in sampler.samples if start <= t]
        result.proxy_rss_peak_mb = max(window) if window else float("nan")
        result.proxy_rss_samples = [(t - start, rss) for t, rss in sampler.samples if start - 1 <= t]
    return result


def run(levels: list[int], seconds: float, home: Path) -> dict:
    """Starts a fake miner and a proxy, runs every level both ways; returns the figures."""
    miner_port, proxy_port = free_port(), free_port()
    miner = start_fake_miner(miner_port, home / "fake-miner.log", max_slots=max(levels) * 2 + 16)
    proxy = start_proxy(proxy_port, home, [f"127.0.0.1:{miner_port}"], heartbeat_seconds=5.0)
    results: list[tuple[LevelResult, LevelResult]] = []
    try:
        wait_serving(f"127.0.0.1:{miner_port}", miner)
        wait_serving(f"127.0.0.1:{proxy_port}", proxy)
        wait_miners_online(f"127.0.0.1:{proxy_port}", 1)
        time.sleep(1.0)
        sampler = Sampler(proxy.pid).start()
        others = {"miner": Sampler(miner.pid), "client": Sampler(psutil.Process().pid)}
        idle_rss = sampler.rss_now()
        for streams in levels:
            via = asyncio.run(run_level(f"127.0.0.1:{proxy_port}", streams, seconds, direct=False, sampler=sampler,
                                        others=others))
            base = asyncio.run(run_level(f"127.0.0.1:{miner_port}", streams, seconds, direct=True, others=others))
            results.append((via, base))
            print(_line(via, base), flush=True)
            time.sleep(1.0)
        after_rss = sampler.rss_now()
        sampler.stop()
    finally:
        stop(proxy)
        stop(miner)
    return {"idle_rss_mb": idle_rss, "after_rss_mb": after_rss, "levels": results, "seconds": seconds}


def _line(via: LevelResult, base: LevelResult) -> str:
    added = via.percentile(50) - base.percentile(50)
    return (f"{via.streams:>5} streams: proxy p50 {via.percentile(50):7.1f} ms p99 {via.percentile(99):7.1f} ms | "
            f"direct p50 {base.percentile(50):6.1f} ms p99 {base.percentile(99):7.1f} ms | "
            f"relay adds p50 {added:6.1f} ms | proxy CPU {via.proxy_cpu_percent:5.0f}% RSS peak "
            f"{via.proxy_rss_peak_mb:6.1f} MB | errors {len(via.errors)}+{len(base.errors)} "
            f"| answers {len(via.delays)}/{len(base.delays)} | CPU % via proxy "
            + " ".join(f"{k} {v:.0f}" for k, v in via.other_cpu_percent.items())
            + " direct " + " ".join(f"{k} {v:.0f}" for k, v in base.other_cpu_percent.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="100,500,1000", help="concurrent streams per level [100,500,1000]")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each stream [10]")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="violet-bench-scale-") as home:
        figures = run(levels, args.seconds, Path(home))
    print(f"\nproxy RSS idle {figures['idle_rss_mb']:.1f} MB, after the runs {figures['after_rss_mb']:.1f} MB")
    for via, _ in figures["levels"]:
        p99 = via.percentile(99)
        print(f"goal at {via.streams} streams: p99 < {GOAL_P99_MS:.0f} ms -> {'met' if p99 < GOAL_P99_MS else 'MISSED'} "
              f"({p99:.1f} ms); RSS < {GOAL_RSS_MB:.0f} MB -> "
              f"{'met' if via.proxy_rss_peak_mb < GOAL_RSS_MB else 'MISSED'} ({via.proxy_rss_peak_mb:.1f} MB)")


if __name__ == "__main__":
    main()
