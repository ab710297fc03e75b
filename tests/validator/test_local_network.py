"""The whole subnet on one machine, real models: proxy + 4 miners + 1 validator on LocalChain.

Miners of known quality, each a real MinerService server with auth on:

* good — the real servicer (tiny.en, Piper, Apertium);
* slow — the same, 3 s slower on every call;
* garbage — answers at once with random words and noise;
* copier — waits for the good miner's answer to the same round and returns it.

The validator (real challenge rendering with Piper, real own ASR, real scoring) runs six
rounds, evaluates organic work through the proxy (signed), and sets weights on the
LocalChain. The proxy meanwhile learns the miners' hotkeys through signed probes.
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
import pytest
from violet.v1 import miner_pb2, miner_pb2_grpc, resources_pb2, synthesis_pb2

from tests.chainnet import Keys, make_keys
from violet_grpc.audio import encode as audio_encode
from violet_grpc.audio.decode import decode_file
from violet_grpc.auth.identity import load_identity
from violet_grpc.auth.policy import miner_rules
from violet_grpc.miner.capacity import Slots
from violet_grpc.miner.servicer import MinerServicer
from violet_grpc.proxy.server import create_server as create_proxy
from violet_grpc.server_common import SERVER_OPTIONS, bind
from violet_grpc.settings import MinerSettings, ProxySettings, ValidatorSettings
from violet_grpc.validator.service import build_validator
from violet_grpc.validator.words import random_words

pytestmark = pytest.mark.slow
SLOW_SECONDS = 3.0


class Board:
    """The good miner's answers, for the copier: visible a moment after they were delivered
    (as if scraped from the wire), never before."""

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[Any]] = {k: asyncio.Queue() for k in ("t", "s", "d")}

    def publish(self, kind: str, answer: Any) -> None:
        asyncio.get_running_loop().call_later(0.2, self.queues[kind].put_nowait, answer)


class GoodServicer(MinerServicer):
    def __init__(self, *args: Any, board: Board, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.board = board

    async def Transcribe(self, request: Any, context: Any) -> Any:
        reply = await super().Transcribe(request, context)
        self.board.publish("t", reply)
        return reply

    async def Synthesize(self, request: Any, context: Any) -> AsyncIterator[Any]:
        sent = []
        async for reply in super().Synthesize(request, context):
            sent.append(reply)
            yield reply
        self.board.publish("s", sent)

    async def TranslateDocument(self, request: Any, context: Any) -> Any:
        reply = await super().TranslateDocument(request, context)
        self.board.publish("d", reply)
        return reply


class SlowServicer(MinerServicer):
    async def Transcribe(self, request: Any, context: Any) -> Any:
        await asyncio.sleep(SLOW_SECONDS)
        return await super().Transcribe(request, context)

    async def Synthesize(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(SLOW_SECONDS)
        async for reply in super().Synthesize(request, context):
            yield reply

    async def TranslateDocument(self, request: Any, context: Any) -> Any:
        await asyncio.sleep(SLOW_SECONDS)
        return await super().TranslateDocument(request, context)


class GarbageServicer(MinerServicer):
    async def Transcribe(self, request: Any, context: Any) -> Any:
        duration = decode_file(request.content).duration
        transcript = resources_pb2.Transcript(text=random_words(random.Random(), 9), language="en",
                                              duration_seconds=duration)
        return miner_pb2.TranscribeResponse(transcript=transcript, model="garbage")

    async def Synthesize(self, request: Any, context: Any) -> AsyncIterator[Any]:
        noise = np.random.default_rng().normal(0, 0.2, 22050).astype(np.float32)
        audio = audio_encode.encode(noise, 22050, audio_encode.AudioFormat.WAV)
        yield miner_pb2.MinerServiceSynthesizeResponse(chunk=synthesis_pb2.AudioChunk(
            audio_content=audio, content_type="audio/wav", sample_rate_hertz=22050, is_last=True))

    async def TranslateDocument(self, request: Any, context: Any) -> Any:
        return miner_pb2.TranslateDocumentResponse(content=random_words(random.Random(), 12).encode(),
                                                   content_type="text/plain")


class CopierServicer(MinerServicer):
    def __init__(self, *args: Any, board: Board, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.board = board

    async def Transcribe(self, request: Any, context: Any) -> Any:
        return await self.board.queues["t"].get()

    async def Synthesize(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for reply in await self.board.queues["s"].get():
            yield reply

    async def TranslateDocument(self, request: Any, context: Any) -> Any:
        return await self.board.queues["d"].get()


async def start_miner(keys: Keys, name: str, servicer_class: type, engines: Any, **extra: Any) -> tuple[grpc.aio.Server, str]:
    """A MinerService server with auth on, its endpoint published on the LocalChain."""
    settings = MinerSettings(port=0, max_slots=2, proxy_hotkey=keys.hotkey("proxy"), **keys.settings(name))
    identity = load_identity(settings)
    server = grpc.aio.server(options=SERVER_OPTIONS,
                             interceptors=identity.interceptors(miner_rules(), trusted=[keys.hotkey("proxy")]))
    port = bind(server, "127.0.0.1", 0)
    servicer = servicer_class(engines, ThreadPoolExecutor(max_workers=2), Slots(2), miner_id=identity.hotkey, **extra)
    miner_pb2_grpc.add_MinerServiceServicer_to_server(servicer, server)
    await server.start()
    await identity.chain.serve(identity.wallet, "127.0.0.1", port)
    return server, f"127.0.0.1:{port}"


async def test_local_subnet_weights_rank_miners_by_quality(tmp_path: Path, engines: Any):
    keys = make_keys(tmp_path)
    keys.create("proxy", register=False)
    keys.create("validator", stake=1000.0, permit=True)
    board = Board()
    behaviours = {"good": (GoodServicer, {"board": board}), "slow": (SlowServicer, {}),
                  "garbage": (GarbageServicer, {}), "copier": (CopierServicer, {"board": board})}
    for name in behaviours:
        keys.create(name)
    servers = {}
    for name, (cls, extra) in behaviours.items():
        servers[name] = await start_miner(keys, name, cls, engines, **extra)
    proxy = await create_proxy(ProxySettings(port=0, task_store=str(tmp_path / "tasks.db"),
                                             file_store=str(tmp_path / "files"), heartbeat_seconds=1,
                                             miners=[endpoint for _, endpoint in servers.values()],
                                             **keys.settings("proxy")))
    try:
        # Signed probes taught the proxy every miner's hotkey.
        assert {m.miner_id for m in proxy.ctx.registry.all()} == {keys.hotkey(n) for n in behaviours}
        challenges = ["transcription", "synthesis"] + (["translation"] if engines.translator else [])
        settings = ValidatorSettings(proxy_server_url=f"127.0.0.1:{proxy.port}", proxy_hotkey=keys.hotkey("proxy"),
                                     state_dir=str(tmp_path / "validator"), seed=7, challenges=challenges,
                                     timeout_seconds=60, **keys.settings("validator"))
        validator = build_validator(settings, load_identity(settings), engines)
        copier_caught = 0
        for _ in range(6):
            report = await validator.run_round()
            copier_caught += keys.hotkey("copier") in report.copies
        assert await validator.organic.run_once() == 0  # signed validator → proxy call admitted; nothing to judge yet
        weights = await validator.set_weights()
    finally:
        await proxy.stop(0)
        for server, _ in servers.values():
            await server.stop(0)
    by_name = {name: weights.get(_uid(keys, name), 0.0) for name in behaviours}
    assert copier_caught == 6, by_name
    assert by_name["good"] > by_name["slow"] > by_name["garbage"], by_name
    assert by_name["copier"] < by_name["slow"] and by_name["copier"] < 0.05, by_name
    assert keys.chain.weights(_uid(keys, "validator")) == pytest.approx(weights)
    assert (tmp_path / "validator" / "weights.jsonl").read_text().strip()


def _uid(keys: Keys, name: str) -> int:
    return next(n.uid for n in keys.chain.neurons() if n.hotkey == keys.hotkey(name))
