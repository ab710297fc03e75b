"""A process's identity on the subnet: its wallet, its chain, and the signing it does.

Built once from a role's settings (``--wallet.*``, ``--subtensor.network``, ``--netuid``),
then asked for the server interceptor that guards its protected methods and for signed
channels to the servers it calls.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from violet_grpc.auth.client import Receiver, signed_channel
from violet_grpc.auth.nonces import NonceStore, SqliteNonceStore
from violet_grpc.auth.policy import MethodRule
from violet_grpc.auth.server import AuthInterceptor
from violet_grpc.auth.wallets import hotkey_address, load_wallet, public_hotkey
from violet_grpc.chain import Chain, chain_from_settings
from violet_grpc.chain.cache import MetagraphCache


@dataclass
class Identity:
    """Wallet, chain and metagraph of one process.

    Attributes:
        wallet: The ``bittensor.Wallet`` whose hotkey signs.
        chain: The subnet.
        metagraph: Shared snapshot of the subnet for auth checks.
        auth: Whether calls are signed and verified (``--auth``).
        max_age: Seconds a signature stays fresh.
        min_validator_stake: Stake a validator needs for validator methods.
    """

    wallet: Any
    chain: Chain
    metagraph: MetagraphCache
    auth: bool = True
    max_age: float = 10.0
    min_validator_stake: float = 0.0
    nonce_store: NonceStore | None = None

    @property
    def hotkey(self) -> str:
        """This process's hotkey (SS58)."""
        return hotkey_address(self.wallet)

    def interceptors(self, rules: Mapping[str, MethodRule], *, trusted: Iterable[str] = ()) -> list[grpc.aio.ServerInterceptor]:
        """The server interceptors for ``rules`` (none when auth is off)."""
        if not self.auth:
            return []
        return [AuthInterceptor(self.hotkey, self.metagraph, rules, trusted_hotkeys=trusted,
                                min_validator_stake=self.min_validator_stake, max_age=self.max_age,
                                nonce_store=self.nonce_store)]

    def channel(self, target: str, receiver: Receiver, *, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
        """A channel to ``target`` whose calls are signed for ``receiver`` (plain when auth is off)."""
        return signed_channel(target, self.wallet if self.auth else None, receiver, options=options)


def load_identity(settings: Any, *, chain: Chain | None = None) -> Identity:
    """The identity a role's settings describe (wallet loaded, chain opened lazily).

    A ``proxy_hotkey`` given as ``wallet:NAME/HOTKEY`` is resolved here, in place, to the
    SS58 address in that wallet's public hotkey file (deployments that create the proxy's
    wallet next to the others need not copy its address around).
    """
    if str(getattr(settings, "proxy_hotkey", "")).startswith("wallet:"):
        settings.proxy_hotkey = public_hotkey(settings.proxy_hotkey.removeprefix("wallet:"), settings.wallet_path)
    wallet = load_wallet(settings.wallet_name, settings.wallet_hotkey, settings.wallet_path)
    chain = chain or chain_from_settings(settings.network, settings.netuid, local_path=settings.local_chain)
    max_age = float(settings.auth_max_age_seconds)
    nonces = SqliteNonceStore(settings.nonce_store, retention=max(60.0, 2 * max_age)) if settings.nonce_store else None
    return Identity(wallet=wallet, chain=chain, metagraph=MetagraphCache(chain), auth=bool(settings.auth),
                    max_age=max_age, min_validator_stake=float(settings.min_validator_stake), nonce_store=nonces)
