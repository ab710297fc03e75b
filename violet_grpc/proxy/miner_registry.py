"""The miners a proxy knows: where they are, what they serve, how loaded and how good.

Miners come from configuration (probed with GetCapabilities every heartbeat interval) or
announce themselves with MinerGateway.Heartbeat. A miner that goes away is offline within
one heartbeat interval and gets no new work:

- a miner the proxy holds a channel to is probed the moment that channel's connection drops
  (a stopped or crashed process closes it), and a failed probe or call takes it offline at
  once; configured miners are also probed every interval (a backstop of two intervals
  covers a miner that hangs with its connection open);
- a miner known only from heartbeats is asked to beat every half interval
  (:attr:`MinerRegistry.heartbeat_request_seconds`) and is offline once a whole interval
  passes without one (two beats missed).
"""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from collections.abc import Callable
from datetime import datetime, timezone

import grpc
from violet.v1 import miner_pb2, miner_pb2_grpc

from violet_grpc.server_common import CHANNEL_OPTIONS
from violet_grpc.tasks import TaskType

log = logging.getLogger(__name__)


@dataclass
class MinerHandle:
    """One miner and the proxy's view of it."""

    miner_id: str
    endpoint: str = ""
    capabilities: miner_pb2.MinerCapabilities = field(default_factory=miner_pb2.MinerCapabilities)
    last_seen: datetime | None = None
    score: float = 1.0
    #: Jobs this proxy has sent and not seen finish (the miner's own count may lag).
    in_flight: int = 0
    channel: grpc.aio.Channel | None = None
    stub: miner_pb2_grpc.MinerServiceStub | None = None

    def serves(self, task_type: TaskType) -> bool:
        """Whether the miner's capabilities list the task type."""
        return int(task_type) in self.capabilities.task_types

    @property
    def free_slots(self) -> int:
        """Room for new work as far as this proxy can tell."""
        return max(0, self.capabilities.max_slots - self.in_flight)


def _known_hotkey(miner: MinerHandle) -> str | None:
    """The miner's hotkey, or None while a configured endpoint has not told it yet."""
    return None if miner.miner_id.startswith("unprobed:") else miner.miner_id


class MinerRegistry:
    """Known miners, their health and selection for new work."""

    def __init__(
        self,
        static_endpoints: list[str],
        heartbeat_seconds: float,
        *,
        rng: random.Random | None = None,
        channel_factory: Callable[[str, Callable[[], str | None]], grpc.aio.Channel] | None = None,
    ) -> None:
        self.heartbeat_seconds = heartbeat_seconds
        #: Opens a miner's channel given its endpoint and a function returning its hotkey
        #: (None while unknown); the proxy passes one that signs calls when auth is on.
        self._channel_factory = channel_factory
        self._miners: dict[str, MinerHandle] = {}
        self._static = list(static_endpoints)
        self._rng = rng or random.Random()
        self._probe_task: asyncio.Task[None] | None = None
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self.changed = asyncio.Event()

    # -- membership -----------------------------------------------------------------------

    def all(self) -> list[MinerHandle]:
        """Every known miner."""
        return list(self._miners.values())

    def get(self, miner_id: str) -> MinerHandle | None:
        """A miner by id."""
        return self._miners.get(miner_id)

    @property
    def heartbeat_request_seconds(self) -> int:
        """How often heartbeat-only miners are asked to beat (whole seconds, as the wire says)."""
        return max(1, int(self.heartbeat_seconds // 2))

    def is_online(self, miner: MinerHandle, now: datetime | None = None) -> bool:
        """Heard from recently enough, and not unreachable since (see the module docstring)."""
        now = now or datetime.now(timezone.utc)
        if miner.last_seen is None:
            return False
        if miner.endpoint and miner.endpoint in self._static:
            deadline = 2 * self.heartbeat_seconds  # probed every interval; failures act at once
        else:
            # Two requested beats must fit, so sub-2 s intervals get two of them.
            deadline = max(self.heartbeat_seconds, 2 * self.heartbeat_request_seconds)
        return (now - miner.last_seen).total_seconds() <= deadline

    def heartbeat(self, miner_id: str, endpoint: str, capabilities: miner_pb2.MinerCapabilities) -> MinerHandle:
        """Records a sign of life (from a Heartbeat RPC or a successful probe)."""
        miner = self._miners.get(miner_id)
        if miner is None:
            miner = self._miners[miner_id] = MinerHandle(miner_id=miner_id)
        if endpoint and endpoint != miner.endpoint:
            self._connect(miner, endpoint)
        miner.capabilities = capabilities
        miner.last_seen = datetime.now(timezone.utc)
        self.changed.set()
        return miner

    def mark_unreachable(self, miner: MinerHandle) -> None:
        """Takes a miner out of rotation after a failed call until it is heard from again."""
        miner.last_seen = None

    def set_score(self, miner_id: str, score: float) -> None:
        """Records the validators' score for a miner (weights selection)."""
        miner = self._miners.get(miner_id)
        if miner is not None:
            miner.score = max(0.0, float(score))

    def _connect(self, miner: MinerHandle, endpoint: str) -> None:
        if miner.channel is not None:
            asyncio.get_running_loop().create_task(miner.channel.close())
        miner.endpoint = endpoint
        if self._channel_factory is not None:
            miner.channel = self._channel_factory(endpoint, lambda: _known_hotkey(miner))
        else:
            miner.channel = grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
        miner.stub = miner_pb2_grpc.MinerServiceStub(miner.channel)
        self._watch(miner, miner.channel)

    def _watch(self, miner: MinerHandle, channel: grpc.aio.Channel) -> None:
        """Probes the miner as soon as its connection leaves READY (the process went away,
        or restarted): the probe decides, so a mere reconnect does not take it offline."""

        async def watch() -> None:
            ready = grpc.ChannelConnectivity.READY
            try:
                state = channel.get_state(try_to_connect=True)
                while state != grpc.ChannelConnectivity.SHUTDOWN and miner.channel is channel:
                    await channel.wait_for_state_change(state)
                    previous, state = state, channel.get_state(try_to_connect=False)
                    if previous == ready and state != ready and miner.channel is channel and miner.endpoint:
                        log.info("connection to miner %s at %s dropped (%s); probing", miner.miner_id,
                                 miner.endpoint, state.name)
                        await self._probe(miner.endpoint)
            except asyncio.CancelledError:
                raise
            except Exception:  # a closed channel ends the watch; nothing to report
                log.debug("watch of %s ended", miner.endpoint, exc_info=True)

        task = asyncio.get_running_loop().create_task(watch())
        self._watchers[id(channel)] = task
        task.add_done_callback(lambda _: self._watchers.pop(id(channel), None))

    def offered(self, what: str) -> set[str]:
        """What online miners offer: "voices", "pairs" (as "en-es") or "languages" (ASR).

        Lets the proxy refuse a request nobody can serve before storing anything.
        """
        result: set[str] = set()
        for miner in self._miners.values():
            if not self.is_online(miner):
                continue
            caps = miner.capabilities
            if what == "voices":
                result.update(v.voice_id for v in caps.voices)
            elif what == "pairs":
                result.update(f"{p.source_language}-{p.target_language}" for p in caps.translation_pairs)
            elif what == "languages":
                result.update(caps.asr_languages)
        return result

    # -- selection ------------------------------------------------------------------------

    def pick(self, task_type: TaskType, *, exclude: set[str] = frozenset(), push_only: bool = True) -> MinerHandle | None:
        """Chooses a miner for new work: online, serving the type, with room; weighted by score."""
        now = datetime.now(timezone.utc)
        candidates = [
            m
            for m in self._miners.values()
            if m.miner_id not in exclude
            and self.is_online(m, now)
            and m.serves(task_type)
            and m.free_slots > 0
            and (m.stub is not None or not push_only)
        ]
        if not candidates:
            return None
        weights = [max(m.score, 0.01) * m.free_slots for m in candidates]
        return self._rng.choices(candidates, weights=weights, k=1)[0]

    # -- probing of configured miners --------------------------------------------------------

    async def start(self) -> None:
        """Probes configured miners once now, then every heartbeat interval."""
        await self.probe_all()
        self._probe_task = asyncio.create_task(self._probe_forever())

    async def stop(self) -> None:
        """Stops probing and closes miner channels."""
        if self._probe_task:
            self._probe_task.cancel()
        for watcher in list(self._watchers.values()):
            watcher.cancel()
        for miner in self._miners.values():
            if miner.channel is not None:
                await miner.channel.close()

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await self.probe_all()

    async def probe_all(self) -> None:
        """Asks every configured miner for its capabilities."""
        await asyncio.gather(*(self._probe(endpoint) for endpoint in self._static))

    async def _probe(self, endpoint: str) -> None:
        known = next((m for m in self._miners.values() if m.endpoint == endpoint), None)
        if known is None:
            known = MinerHandle(miner_id=f"unprobed:{endpoint}")
            self._connect(known, endpoint)
        try:
            reply = await known.stub.GetCapabilities(miner_pb2.GetCapabilitiesRequest(), timeout=max(1.0, self.heartbeat_seconds))
        except grpc.RpcError as exc:
            if known.miner_id in self._miners:
                log.info("miner %s at %s is unreachable: %s", known.miner_id, endpoint, exc.code().name)
                self.mark_unreachable(known)
            elif known.channel is not None:
                await known.channel.close()
            return
        caps = reply.capabilities
        miner_id = caps.miner_id or endpoint
        if known.miner_id != miner_id:
            if known.channel is not None and miner_id in self._miners:
                await known.channel.close()
            elif miner_id not in self._miners:
                known.miner_id = miner_id
                self._miners[miner_id] = known
        self.heartbeat(miner_id, endpoint, caps)
