"""Everything the proxy's services share, built once by the server."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from violet_grpc.proxy.dispatcher import Dispatcher
from violet_grpc.proxy.miner_registry import MinerRegistry
from violet_grpc.proxy.orchestrator import Orchestrator
from violet_grpc.proxy.stream_relay import StreamRelay
from violet_grpc.settings import ProxySettings
from violet_grpc.storage import FileStore, TaskStore


@dataclass
class ProxyContext:
    """The proxy's collaborators, handed to every servicer."""

    settings: ProxySettings
    store: TaskStore
    files: FileStore
    registry: MinerRegistry
    orchestrator: Orchestrator
    dispatcher: Dispatcher
    relay: StreamRelay
    started_at: float = field(default_factory=time.monotonic)

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.settings.max_upload_mb * 1024 * 1024)
