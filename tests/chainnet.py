"""Helpers for signed networks on LocalChain: wallets, registrations, signed stubs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from violet_grpc.auth import create_wallet, signed_channel
from violet_grpc.chain import LocalChain

NETUID = 49


@dataclass
class Keys:
    """Wallets created under one folder and the LocalChain they are registered on."""

    root: Path
    chain: LocalChain
    wallets: dict[str, Any] = field(default_factory=dict)

    @property
    def wallet_path(self) -> Path:
        return self.root / "wallets"

    def create(self, name: str, *, register: bool = True, stake: float = 0.0, permit: bool = False) -> Any:
        """A wallet ``name``/default, registered on the chain unless ``register`` is False."""
        wallet = create_wallet(name, "default", self.wallet_path)
        self.wallets[name] = wallet
        if register:
            self.chain.register(wallet.hotkey.ss58_address, coldkey=wallet.coldkeypub.ss58_address,
                                stake=stake, validator_permit=permit)
        return wallet

    def hotkey(self, name: str) -> str:
        return self.wallets[name].hotkey.ss58_address

    def settings(self, name: str) -> dict[str, Any]:
        """The identity settings of a role run as wallet ``name``."""
        return {"auth": True, "network": "local", "netuid": NETUID, "wallet_name": name, "wallet_hotkey": "default",
                "wallet_path": str(self.wallet_path), "local_chain": str(self.chain.path)}

    def channel(self, name: str, target: str, receiver: str | None) -> grpc.aio.Channel:
        """A channel whose calls are signed by wallet ``name`` for ``receiver``."""
        return signed_channel(target, self.wallets[name], receiver)


def make_keys(root: Path) -> Keys:
    return Keys(root=root, chain=LocalChain(root / "chain.json", NETUID))
