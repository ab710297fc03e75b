"""Server fixtures (a pytest plugin): real servers on loopback, in-process and as child processes."""
from __future__ import annotations

import os
from contextlib import contextmanager
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from tests.helpers import free_port
from violet_grpc.miner.engine_loader import Engines, load_engines
from violet_grpc.miner.server import create_server as create_miner
from violet_grpc.proxy.server import RunningProxy, create_server as create_proxy
from violet_grpc.settings import MinerSettings, ProxySettings
from violet_grpc.stack import Stack, StackConfig


@pytest.fixture(scope="session")
def engines() -> Engines:
    """ASR (tiny.en), TTS (Piper) and translation (Apertium) engines, loaded once per run."""
    return load_engines(MinerSettings(engines=_engine_names().split(",")))


def _engine_names() -> str:
    """Engines the tests load: all three when Apertium is installed (VIOLET_TEST_ENGINES overrides)."""
    return os.environ.get("VIOLET_TEST_ENGINES", "asr,tts,translate" if _has_apertium() else "asr,tts")


def _has_apertium() -> bool:
    from shutil import which

    return which("apertium") is not None


@dataclass
class LocalNet:
    """A proxy and miners running in this process, on free loopback ports."""

    proxy: RunningProxy
    miners: list[tuple[grpc.aio.Server, int, object]] = field(default_factory=list)

    @property
    def proxy_address(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.proxy_address)


async def start_local_net(tmp: Path, engines: Engines, *, miners: int = 1, **proxy_overrides: object) -> LocalNet:
    """Starts ``miners`` miner servers sharing ``engines`` and a proxy that knows them."""
    started = []
    for index in range(miners):
        # auth=False: these in-process nets test the service paths; tests/auth and
        # tests/validator start signed networks on LocalChain, and `violet up` signs by default.
        settings = MinerSettings(port=0, miner_id=f"miner-{index}", max_slots=2, auth=False)
        started.append(await create_miner(settings, engines))
    proxy_settings = ProxySettings(
        auth=False,
        port=0,
        task_store=str(tmp / "tasks.db"),
        file_store=str(tmp / "files"),
        miners=[f"127.0.0.1:{port}" for _, port, _ in started],
        heartbeat_seconds=1.0,
        lease_seconds=60.0,
    )
    for key, value in proxy_overrides.items():
        setattr(proxy_settings, key, value)
    proxy = await create_proxy(proxy_settings)
    return LocalNet(proxy=proxy, miners=started)


async def stop_local_net(net: LocalNet) -> None:
    await net.proxy.stop(0.5)
    for server, _, _ in net.miners:
        await server.stop(0.5)


@pytest.fixture
async def local_net(tmp_path: Path, engines: Engines) -> AsyncIterator[LocalNet]:
    """One proxy and one miner in-process, fresh stores per test."""
    net = await start_local_net(tmp_path, engines)
    yield net
    await stop_local_net(net)


@contextmanager
def running_stack(home: Path, **overrides: object) -> Iterator[StackConfig]:
    """Starts the processes `violet up` starts (on free ports) and stops them afterwards."""
    config = StackConfig(
        home=home,
        proxy_port=free_port(),
        miner_port=free_port(),
        rest_port=free_port(),
        admin_port=free_port(),
        engines=_engine_names(),
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    running = Stack(config)
    try:
        running.start(timeout=180)
        yield config
    finally:
        running.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    """The real processes `violet up` starts (miner, proxy, Envoy, validator) on free ports."""
    with running_stack(tmp_path_factory.mktemp("violet-home")) as config:
        yield config
