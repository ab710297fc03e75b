"""The chain as Violet sees it: who is registered, with what stake and permit, where they serve.

Two backends implement :class:`Chain`: :class:`~violet_grpc.chain.local.LocalChain` (a
file under ``VIOLET_HOME``, for one machine with no TAO) and
:class:`~violet_grpc.chain.bittensor_chain.BittensorChain` (the ``bittensor`` SDK against
finney, test or a ``ws://`` node). Everything above this package only sees these types.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from violet_grpc import errors

#: Subnet of each named network (the seed's defaults).
DEFAULT_NETUIDS = {"finney": 49, "test": 424, "local": 49}


@dataclass(frozen=True)
class Neuron:
    """One registered hotkey on the subnet.

    Attributes:
        uid: The neuron's slot on the subnet (what weights are keyed by).
        hotkey: SS58 address of the hotkey.
        coldkey: SS58 address of the owning coldkey ("" when unknown).
        stake: Total stake behind the hotkey, in the subnet's token.
        validator_permit: Whether the neuron may set weights (and call validator RPCs).
        endpoint: The served ``host:port``, "" when nothing is served.
    """

    uid: int
    hotkey: str
    coldkey: str = ""
    stake: float = 0.0
    validator_permit: bool = False
    endpoint: str = ""


@dataclass(frozen=True)
class Metagraph:
    """A snapshot of the subnet at one block, looked up by hotkey or by uid."""

    netuid: int
    block: int
    neurons: tuple[Neuron, ...] = ()
    _by_hotkey: dict[str, Neuron] = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_uid: dict[int, Neuron] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_hotkey.update({n.hotkey: n for n in self.neurons})
        self._by_uid.update({n.uid: n for n in self.neurons})

    def __contains__(self, hotkey: object) -> bool:
        return isinstance(hotkey, str) and bool(hotkey) and hotkey in self._by_hotkey

    def __iter__(self) -> Iterator[Neuron]:
        return iter(self.neurons)

    def __len__(self) -> int:
        return len(self.neurons)

    def neuron(self, hotkey: str) -> Neuron | None:
        """The neuron registered under ``hotkey``; None for anyone else (empty strings included)."""
        if hotkey not in self:
            return None
        return self._by_hotkey[hotkey]

    def by_uid(self, uid: int) -> Neuron | None:
        """The neuron at ``uid``, or None."""
        return self._by_uid.get(uid)

    @property
    def validators(self) -> list[Neuron]:
        """Neurons holding a validator permit."""
        return [n for n in self.neurons if n.validator_permit]


class Chain(Protocol):
    """Registration, endpoints and weights of one subnet."""

    #: Network label ("local", "finney", "test", or the ws:// endpoint).
    network: str
    #: The subnet this chain object talks about.
    netuid: int

    async def uid(self, hotkey: str) -> int | None:
        """The hotkey's uid on the subnet, or None when it is not registered."""
        ...

    async def metagraph(self) -> Metagraph:
        """Every neuron of the subnet now."""
        ...

    async def serve(self, wallet: Any, ip: str, port: int) -> None:
        """Publishes the wallet hotkey's gRPC endpoint; raises ChainError on failure."""
        ...

    async def set_weights(self, wallet: Any, weights: Mapping[int, float]) -> None:
        """Sets the wallet hotkey's weights ({uid: weight}, relative); raises ChainError on failure."""
        ...

    async def close(self) -> None:
        """Releases connections."""
        ...


class ChainError(errors.FailedPrecondition):
    """The chain refused or could not carry out an operation."""

    default_reason = "CHAIN_ERROR"


class NotRegisteredError(ChainError):
    """A hotkey is not registered on the subnet; the message says how to register it."""

    default_reason = "NOT_REGISTERED"


def register_command(netuid: int, wallet_name: str, wallet_hotkey: str, network: str = "") -> str:
    """The ``btcli`` command that registers a hotkey on a subnet."""
    command = f"btcli subnet register --netuid {netuid} --wallet.name {wallet_name} --wallet.hotkey {wallet_hotkey}"
    if network and network not in ("finney", "local"):
        command += f" --subtensor.network {network}"
    return command


async def require_registered(chain: Chain, hotkey: str, *, wallet_name: str, wallet_hotkey: str) -> int:
    """The hotkey's uid; raises :class:`NotRegisteredError` naming the command that registers it."""
    uid = await chain.uid(hotkey)
    if uid is not None:
        return uid
    if chain.network == "local":
        how = (f"violet chain register --wallet.name {wallet_name} --wallet.hotkey {wallet_hotkey}"
               " (add --stake 1000 --validator-permit for a validator)")
    else:
        how = register_command(chain.netuid, wallet_name, wallet_hotkey, chain.network)
    raise NotRegisteredError(
        f"hotkey {hotkey} (wallet {wallet_name}/{wallet_hotkey}) is not registered on netuid {chain.netuid} "
        f"of {chain.network}; register it first: {how}",
        metadata={"hotkey": hotkey, "netuid": str(chain.netuid), "network": chain.network, "command": how},
    )
