"""The validator loop: challenge rounds, organic evaluation, weights every epoch.

Each round picks the next challenge kind, asks every miner the metagraph lists with an
endpoint, and folds the scores into a per-uid EMA. Every ``epoch_seconds`` the averages
become normalised weights set on chain. Rounds, scores, copies and weights are logged and
appended to ``state_dir/weights.jsonl``.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from violet_grpc.auth.identity import Identity
from violet_grpc.server_common import CHANNEL_OPTIONS
from violet_grpc.validator.miners import GrpcMinerClient, MinerClient
from violet_grpc.validator.organic import OrganicEvaluator
from violet_grpc.validator.rounds import RoundReport, Rounds
from violet_grpc.validator.scores import ScoreBook

log = logging.getLogger(__name__)


@dataclass
class Validator:
    """One validator.

    Attributes:
        identity: Wallet and chain (signing calls to miners when auth is on).
        rounds: The challenge rounds.
        book: The score EMA by uid.
        state_dir: Where scores and the weight log are kept.
        organic: Organic evaluation through the proxy, if configured.
        exclude: Hotkeys that are not miners (the proxy's).
    """

    identity: Identity
    rounds: Rounds
    book: ScoreBook = field(default_factory=ScoreBook)
    state_dir: Path | None = None
    organic: OrganicEvaluator | None = None
    exclude: frozenset[str] = frozenset()
    _clients: dict[tuple[str, str], GrpcMinerClient] = field(default_factory=dict)
    _kinds: Any = None

    async def miners(self) -> list[MinerClient]:
        """A client for every neuron serving an endpoint, other than this validator."""
        graph = await self.identity.chain.metagraph()
        me = self.identity.hotkey
        out: list[MinerClient] = []
        for neuron in graph:
            if not neuron.endpoint or neuron.hotkey == me or neuron.hotkey in self.exclude:
                continue
            key = (neuron.hotkey, neuron.endpoint)
            client = self._clients.get(key)
            if client is None or client.uid != neuron.uid:
                channel = self.identity.channel(neuron.endpoint, neuron.hotkey, options=CHANNEL_OPTIONS)
                client = self._clients[key] = GrpcMinerClient(neuron.uid, neuron.hotkey, channel)
            out.append(client)
        return out

    def next_kind(self) -> str | None:
        """The next challenge kind, in rotation."""
        kinds = self.rounds.kinds()
        if not kinds:
            return None
        if self._kinds is None:
            self._kinds = itertools.cycle(kinds)
        return next(self._kinds)

    async def run_round(self, miners: list[MinerClient] | None = None) -> RoundReport | None:
        """One challenge round; folds its scores into the EMA."""
        kind = self.next_kind()
        miners = await self.miners() if miners is None else miners
        if kind is None or not miners:
            return None
        report = await self.rounds.run(kind, miners)
        hotkeys = {m.uid: m.hotkey for m in miners}
        for uid, score in report.scores.items():
            self.book.update(uid, hotkeys[uid], score)
        log.info("round %s %s: scores %s copies %s", kind, report.challenge_id[:8],
                 {u: round(s, 3) for u, s in sorted(report.scores.items())}, report.copies or "none")
        return report

    async def set_weights(self) -> dict[int, float]:
        """Normalises the EMA into weights and sets them on chain (nothing when all are zero)."""
        graph = await self.identity.chain.metagraph()
        self.book.sync({n.uid: n.hotkey for n in graph})
        weights = self.book.weights()
        if weights:
            await self.identity.chain.set_weights(self.identity.wallet, weights)
        record = {"time": time.time(), "block": graph.block, "scores": {str(u): round(v, 6) for u, v in self.book.ema.items()},
                  "weights": {str(u): round(w, 6) for u, w in weights.items()}}
        log.info("weights set on netuid %s: %s", self.identity.chain.netuid, record["weights"] or "none (no scores)")
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with (self.state_dir / "weights.jsonl").open("a") as out:
                out.write(json.dumps(record, sort_keys=True) + "\n")
            self.book.save(self.state_dir / "scores.json")
        return weights

    async def run(self, *, round_seconds: float, epoch_seconds: float, stop: asyncio.Event | None = None) -> None:
        """Rounds every ``round_seconds``, weights every ``epoch_seconds``, until ``stop`` is set."""
        stop = stop or asyncio.Event()
        last_weights = time.monotonic()
        while not stop.is_set():
            try:
                await self.run_round()
                if self.organic is not None:
                    done = await self.organic.run_once()
                    if done:
                        log.info("evaluated %d organic tasks", done)
                if time.monotonic() - last_weights >= epoch_seconds:
                    await self.set_weights()
                    last_weights = time.monotonic()
            except Exception:  # one bad round (chain hiccup, proxy down) must not end the validator
                log.exception("validator round failed; continuing")
            try:
                await asyncio.wait_for(stop.wait(), timeout=round_seconds)
            except asyncio.TimeoutError:
                pass
