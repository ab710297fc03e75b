"""BittensorChain: the subnet on a real chain, through the ``bittensor`` SDK (v11).

Reads go through the SDK's typed namespaces (``client.neurons.uid`` for the registration
check, ``client.subnets.metagraph`` for the snapshot); writes are the SDK's intents
(``ServeAxon`` publishes the gRPC endpoint, ``SetWeights`` conforms the weights to the
subnet's limits and picks plain ``set_mechanism_weights`` or a timelocked commit when the
subnet runs commit-reveal). The connection opens on first use; ``substrate`` swaps the SDK's
chain backend, which is how the tests run it offline.
"""
from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from typing import Any

from violet_grpc import __version__
from violet_grpc.chain.base import ChainError, Metagraph, Neuron


def version_key(version: str = __version__) -> int:
    """The software version as the integer the chain stores with an axon (1.2.3 → 10203)."""
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0] * 10000 + parts[1] * 100 + parts[2]


class BittensorChain:
    """One subnet on finney, test or a ``ws://`` endpoint.

    Args:
        network: ``finney``, ``test`` or a ``ws://`` / ``wss://`` endpoint.
        netuid: The subnet (Violet: 49 on finney, 424 on test).
        substrate: An object implementing ``bittensor.Substrate`` to use instead of the RPC
            connection (tests inject an in-memory fake here).
    """

    def __init__(self, network: str, netuid: int, *, substrate: Any | None = None) -> None:
        import bittensor as bt

        self._bt = bt
        self.netuid = int(netuid)
        self._client = bt.Client(network, substrate=substrate)
        # The label the user gave: the SDK calls ws://127.0.0.1:9944 "local", which here means LocalChain.
        self.network = network
        self._connected = False
        self._lock = asyncio.Lock()

    async def _ready(self) -> Any:
        async with self._lock:
            if not self._connected:
                try:
                    await self._client.connect()
                except Exception as exc:  # the SDK raises several connection error types
                    raise ChainError(f"cannot connect to {self.network} ({self._client.endpoint}): {exc}",
                                     reason="CHAIN_UNREACHABLE") from exc
                self._connected = True
        return self._client

    async def uid(self, hotkey: str) -> int | None:
        client = await self._ready()
        return await client.neurons.uid(hotkey, self.netuid)

    async def metagraph(self) -> Metagraph:
        client = await self._ready()
        graph = await client.subnets.metagraph(self.netuid, commitments=False)
        if graph is None:
            raise ChainError(f"subnet {self.netuid} does not exist on {self.network}", reason="NO_SUCH_SUBNET")
        return Metagraph(
            netuid=self.netuid,
            block=int(graph.block),
            neurons=tuple(
                Neuron(uid=n.uid, hotkey=n.hotkey, coldkey=n.coldkey, stake=_amount(n.total_stake),
                       validator_permit=n.validator_permit, endpoint=n.axon or "")
                for n in graph.neurons
            ),
        )

    async def serve(self, wallet: Any, ip: str, port: int) -> None:
        try:
            ipaddress.ip_address(ip)
        except ValueError as exc:
            raise ChainError(f"the chain stores an IP address, not {ip!r}: pass --axon.external_ip",
                             reason="INVALID_IP") from exc
        client = await self._ready()
        intent = self._bt.ServeAxon(netuid=self.netuid, ip=ip, port=int(port), version=version_key())
        await self._execute(client, intent, wallet, "publishing the endpoint")

    async def set_weights(self, wallet: Any, weights: Mapping[int, float]) -> None:
        client = await self._ready()
        # version_key stays 0 (the SDK's default) unless the subnet owner asks for more.
        intent = self._bt.SetWeights(netuid=self.netuid, weights={int(u): float(w) for u, w in weights.items()})
        await self._execute(client, intent, wallet, "setting weights")

    async def _execute(self, client: Any, intent: Any, wallet: Any, what: str) -> Any:
        try:
            result = await client.execute(intent, wallet)
            return result.raise_for_failure()
        except self._bt.BittensorError as exc:
            raise ChainError(f"{what} on netuid {self.netuid} of {self.network} failed: {exc}",
                             reason="CHAIN_REFUSED") from exc

    async def close(self) -> None:
        if self._connected:
            await self._client.close()
            self._connected = False

    def __repr__(self) -> str:
        return f"BittensorChain(network={self.network!r}, netuid={self.netuid})"


def _amount(balance: Any) -> float:
    """A stake as a plain number in its own unit (alpha on a subnet, TAO on root)."""
    return float(balance.amount)
