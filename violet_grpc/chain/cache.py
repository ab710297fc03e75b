"""A metagraph snapshot shared by the auth checks of one process.

Reading the metagraph is one runtime call on a real chain and a file read on LocalChain;
doing it on every signed call would be wasteful, so a snapshot is reused for ``ttl``
seconds (about a block). A hotkey missing from the snapshot triggers one early refresh
(at most every ``miss_refresh`` seconds), so a neuron registered a moment ago is not
refused for a whole TTL while a flood of unknown hotkeys cannot force a read per call.
"""
from __future__ import annotations

import asyncio
import time

from violet_grpc.chain.base import Chain, Metagraph, Neuron


class MetagraphCache:
    """The chain's metagraph, refreshed at most every ``ttl`` seconds."""

    def __init__(self, chain: Chain, *, ttl: float = 12.0, miss_refresh: float = 1.0) -> None:
        self.chain = chain
        self.ttl = ttl
        self.miss_refresh = miss_refresh
        self._graph: Metagraph | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, max_age: float | None = None) -> Metagraph:
        """A snapshot no older than ``max_age`` (default: the TTL)."""
        limit = self.ttl if max_age is None else max_age
        if self._graph is None or time.monotonic() - self._at > limit:
            async with self._lock:
                if self._graph is None or time.monotonic() - self._at > limit:
                    self._graph = await self.chain.metagraph()
                    self._at = time.monotonic()
        return self._graph

    async def neuron(self, hotkey: str) -> Neuron | None:
        """The registered neuron for ``hotkey`` or None; a miss refreshes a stale-ish snapshot once."""
        graph = await self.get()
        if hotkey in graph:
            return graph.neuron(hotkey)
        graph = await self.get(max_age=self.miss_refresh)
        return graph.neuron(hotkey) if hotkey in graph else None
