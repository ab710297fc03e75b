"""Video transcription overhead: an MP4 (H.264 + AAC speech) against its extracted WAV.

Both go through the same proxy and miner (in this process, loopback gRPC), same model; the
only difference is the container the miner decodes and the video frames it skips. Rounds
alternate so machine noise hits both alike.

    python bench/video_overhead.py [--rounds 5]
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

from google.api import httpbody_pb2  # noqa: E402
from violet.v1 import transcription_pb2, transcription_pb2_grpc  # noqa: E402

from tests.helpers import speech_video  # noqa: E402
from violet_grpc.audio.decode import decode_file  # noqa: E402
from violet_grpc.audio.encode import AudioFormat, encode  # noqa: E402
from violet_grpc.miner.engine_loader import load_engines  # noqa: E402
from violet_grpc.miner.server import create_server as create_miner  # noqa: E402
from violet_grpc.proxy.server import create_server as create_proxy  # noqa: E402
from violet_grpc.settings import MinerSettings, ProxySettings  # noqa: E402

GOAL = 1.10


async def main(audio: Path, rounds: int) -> None:
    samples = decode_file(audio).samples
    video, wav = speech_video(samples), encode(samples, 16000, AudioFormat.WAV)
    engines = load_engines(MinerSettings(engines=["asr"], auth=False))
    with tempfile.TemporaryDirectory() as tmp:
        miner, port, _ = await create_miner(MinerSettings(port=0, auth=False), engines)
        proxy = await create_proxy(ProxySettings(port=0, task_store=f"{tmp}/t.db", file_store=f"{tmp}/f",
                                                 miners=[f"127.0.0.1:{port}"], auth=False))
        try:
            import grpc

            async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
                stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)

                async def video_task(i: int) -> float:
                    t0 = time.perf_counter()
                    r = await stub.CreateVideoTranscription(transcription_pb2.CreateVideoTranscriptionRequest(
                        video=httpbody_pb2.HttpBody(content_type="video/mp4", data=video + bytes(i)),
                        wait_for_completion=True))
                    assert r.task.state == 5, r.task.failure_reason
                    return time.perf_counter() - t0

                async def wav_task(i: int) -> float:
                    t0 = time.perf_counter()
                    r = await stub.CreateTranscription(transcription_pb2.CreateTranscriptionRequest(
                        audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=wav + bytes(i)),
                        wait_for_completion=True))
                    assert r.task.state == 5, r.task.failure_reason
                    return time.perf_counter() - t0

                await wav_task(0)
                times = {"video (mp4)": [], "extracted wav": []}
                for i in range(1, rounds + 1):
                    times["video (mp4)"].append(await video_task(i))
                    times["extracted wav"].append(await wav_task(i))
        finally:
            await proxy.stop(0.5)
            await miner.stop(0.5)
    base = statistics.median(times["extracted wav"])
    print(f"\nVideo transcription overhead, {audio.name} ({len(video) / 1e3:.0f} kB mp4), {rounds} rounds")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<16}{med:>8.3f} s{med / base:>8.2f}x   goal <= {GOAL:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=REPO.parent / "shared" / "fixtures" / "jfk.flac")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.audio, args.rounds))
