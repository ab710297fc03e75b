"""Chain access: LocalChain (embedded registry) or BittensorChain (the bittensor SDK)."""
from __future__ import annotations

from pathlib import Path

from violet_grpc import errors
from violet_grpc.chain.base import (
    DEFAULT_NETUIDS,
    Chain,
    ChainError,
    Metagraph,
    Neuron,
    NotRegisteredError,
    register_command,
    require_registered,
)
from violet_grpc.chain.local import LocalChain

__all__ = [
    "DEFAULT_NETUIDS",
    "Chain",
    "ChainError",
    "LocalChain",
    "Metagraph",
    "Neuron",
    "NotRegisteredError",
    "chain_from_settings",
    "register_command",
    "require_registered",
    "resolve_netuid",
]


def resolve_netuid(network: str, netuid: int) -> int:
    """The subnet to use: ``netuid`` when given (non-zero), else the network's default."""
    if netuid:
        return int(netuid)
    if network in DEFAULT_NETUIDS:
        return DEFAULT_NETUIDS[network]
    raise errors.InvalidArgument(f"give --netuid for network {network!r}", reason="MISSING_NETUID",
                                 metadata={"field": "netuid"})


def chain_from_settings(network: str, netuid: int = 0, *, local_path: Path | str = "", substrate: object = None) -> Chain:
    """The chain named by ``--subtensor.network``.

    Args:
        network: ``local`` (the embedded registry file), ``finney``, ``test``, or a
            ``ws://`` / ``wss://`` endpoint (e.g. a local subtensor node, ``ws://127.0.0.1:9944``).
        netuid: The subnet; 0 picks the network's default (finney 49, test 424, local 49).
        local_path: The registry file of ``local``.
        substrate: For BittensorChain, an SDK ``Substrate`` to use instead of the RPC backend.

    Raises:
        InvalidArgument: ``UNKNOWN_NETWORK`` for anything else.
    """
    network = (network or "local").strip()
    if network == "local":
        if not local_path:
            raise errors.InvalidArgument("the local chain needs a registry path", reason="MISSING_SETTING",
                                         metadata={"field": "local_chain"})
        return LocalChain(Path(local_path), resolve_netuid(network, netuid))
    if network in ("finney", "test") or network.startswith(("ws://", "wss://")):
        from violet_grpc.chain.bittensor_chain import BittensorChain

        return BittensorChain(network, resolve_netuid(network, netuid), substrate=substrate)
    raise errors.InvalidArgument(
        f"unknown network {network!r}: use local, finney, test, or a ws:// endpoint",
        reason="UNKNOWN_NETWORK", metadata={"field": "subtensor.network"},
    )
