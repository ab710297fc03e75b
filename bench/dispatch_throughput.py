"""Dispatch: how many tasks a second the proxy moves, and what it adds per task.

A miner with a trivial ASR engine (answers a fixed transcript at once) isolates the proxy's
own cost: upload check, storage, lease, push call, answer, aggregation, completion. The
baseline, measured in the same run, is the same miner's Transcribe called directly.

    python bench/dispatch_throughput.py [--tasks 200] [--sequential 30]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import av  # noqa: E402
import grpc  # noqa: E402
import numpy as np  # noqa: E402
from google.api import httpbody_pb2  # noqa: E402
from violet.v1 import miner_pb2, miner_pb2_grpc, tasks_pb2, tasks_pb2_grpc, transcription_pb2, transcription_pb2_grpc  # noqa: E402

from violet_grpc.miner.engine_loader import Engines  # noqa: E402
from violet_grpc.miner.server import create_server as create_miner  # noqa: E402
from violet_grpc.proxy.server import create_server as create_proxy  # noqa: E402
from violet_grpc.settings import MinerSettings, ProxySettings  # noqa: E402
from violet_grpc.transcripts import Segment, Transcript  # noqa: E402


class InstantEngine:
    """An ASR engine that answers at once: the proxy's overhead is all that is left."""

    name = "instant"
    device = "cpu"

    def languages(self) -> tuple[str, ...]:
        return ("en",)

    def transcribe(self, audio: np.ndarray, options: object) -> Transcript:
        duration = len(audio) / 16000
        return Transcript("hello world", "en", 1.0, duration, (Segment("hello world", 0.0, duration),))

    def open_stream(self, options: object) -> object:
        raise RuntimeError("not used here")


def tiny_wav(seconds: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, int(16000 * seconds)), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


async def main(tasks: int, sequential: int) -> None:
    wav = tiny_wav()
    with tempfile.TemporaryDirectory() as tmp:
        miner, miner_port, _ = await create_miner(MinerSettings(port=0, miner_id="instant", max_slots=64, auth=False),
                                                   Engines(asr=InstantEngine()))
        proxy = await create_proxy(ProxySettings(auth=False, port=0, task_store=f"{tmp}/t.db", file_store=f"{tmp}/f",
                                                 miners=[f"127.0.0.1:{miner_port}"], heartbeat_seconds=1))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{miner_port}") as mch, \
                    grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as pch:
                direct_stub = miner_pb2_grpc.MinerServiceStub(mch)
                upload = transcription_pb2_grpc.TranscriptionServiceStub(pch)
                direct, stacked = [], []
                for i in range(sequential):
                    t0 = time.perf_counter()
                    await direct_stub.Transcribe(miner_pb2.TranscribeRequest(content=wav, content_type="audio/wav"))
                    direct.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    reply = await upload.CreateTranscription(transcription_pb2.CreateTranscriptionRequest(
                        audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=wav + i.to_bytes(4, "little")),
                        wait_for_completion=True))
                    stacked.append(time.perf_counter() - t0)
                    assert reply.task.state == 5, reply.task
                t0 = time.perf_counter()
                created = await asyncio.gather(*(upload.CreateTranscription(transcription_pb2.CreateTranscriptionRequest(
                    audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=wav + (10_000 + i).to_bytes(4, "little"))))
                    for i in range(tasks)))
                accepted = time.perf_counter() - t0
                ids = {c.task.task_id for c in created}
                listing = tasks_pb2_grpc.TasksServiceStub(pch)
                while True:
                    done = (await listing.ListTasks(tasks_pb2.ListTasksRequest(state=5, page_size=1000))).tasks
                    if ids <= {t.task_id for t in done}:
                        break
                    await asyncio.sleep(0.05)
                finished = time.perf_counter() - t0
        finally:
            await proxy.stop(0.5)
            await miner.stop(0.5)
    d, s = statistics.median(direct), statistics.median(stacked)
    print(f"\nDispatch with an instant engine ({sequential} sequential tasks, then {tasks} at once)")
    print(f"{'measure':<42}{'value':>12}")
    print(f"{'Miner.Transcribe direct, median':<42}{d * 1000:>10.1f} ms")
    print(f"{'upload → completed via proxy, median':<42}{s * 1000:>10.1f} ms")
    print(f"{'added by the proxy per task':<42}{(s - d) * 1000:>10.1f} ms   ({s / d:.1f}x direct)")
    print(f"{'accepted (uploads stored), tasks/s':<42}{tasks / accepted:>12.1f}")
    print(f"{'completed end to end, tasks/s':<42}{tasks / finished:>12.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.sequential))
