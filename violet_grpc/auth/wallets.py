"""Wallets: btcli-compatible key files (``<path>/<name>/coldkey``, ``hotkeys/<hotkey>``).

The files are the ones ``btcli wallet create`` writes (the ``bittensor`` SDK's ``Wallet``),
so a hotkey made by ``violet wallet create`` works with btcli and the other way round.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from violet_grpc import errors

DEFAULT_WALLET_PATH = os.environ.get("BT_WALLET_PATH", str(Path.home() / ".bittensor" / "wallets"))


def _wallet_class() -> Any:
    from bittensor import Wallet

    return Wallet


def load_wallet(name: str, hotkey: str, path: str | Path = DEFAULT_WALLET_PATH) -> Any:
    """The wallet with its hotkey unlocked (hotkeys are stored unencrypted, as btcli does).

    Raises:
        FailedPrecondition: ``WALLET_NOT_FOUND`` naming the commands that create it.
    """
    wallet = _wallet_class()(name=name, hotkey=hotkey, path=str(path))
    hotkey_file = Path(str(path)).expanduser() / name / "hotkeys" / hotkey
    if not hotkey_file.exists():
        raise errors.FailedPrecondition(
            f"no hotkey {hotkey!r} in wallet {name!r} under {path}: create it with "
            f"'violet wallet create --wallet.name {name} --wallet.hotkey {hotkey}' "
            f"(or 'btcli wallet new_hotkey --wallet.name {name} --wallet.hotkey {hotkey}')",
            reason="WALLET_NOT_FOUND", metadata={"wallet": name, "hotkey": hotkey, "path": str(path)})
    try:
        wallet.unlock_hotkey()
    except Exception as exc:  # the SDK's keyfile errors (encrypted, corrupt) have no common base
        raise errors.FailedPrecondition(f"cannot read hotkey {name}/{hotkey}: {exc}", reason="WALLET_UNREADABLE",
                                        metadata={"wallet": name, "hotkey": hotkey}) from exc
    return wallet


def create_wallet(name: str, hotkey: str, path: str | Path = DEFAULT_WALLET_PATH) -> Any:
    """Creates the coldkey (if missing) and the hotkey (if missing); returns the loaded wallet.

    The coldkey is written without a password: this is for local networks. Keys that hold
    real TAO belong in ``btcli wallet create``, which asks for one.
    """
    wallet = _wallet_class()(name=name, hotkey=hotkey, path=str(path))
    root = Path(str(path)).expanduser() / name
    if not (root / "coldkeypub.txt").exists():
        wallet.create_new_coldkey(use_password=False, overwrite=False, suppress=True)
    if not (root / "hotkeys" / hotkey).exists():
        wallet.create_new_hotkey(use_password=False, overwrite=False, suppress=True)
    return load_wallet(name, hotkey, path)


def hotkey_address(wallet: Any) -> str:
    """The wallet's hotkey SS58 address."""
    return str(wallet.hotkey.ss58_address)


def coldkey_address(wallet: Any) -> str:
    """The wallet's coldkey SS58 address (from the public file; never unlocks the coldkey)."""
    try:
        return str(wallet.coldkeypub.ss58_address)
    except Exception:  # a hotkey-only wallet (copied to a server) has no coldkeypub.txt
        return ""


def public_hotkey(reference: str, path: str | Path = DEFAULT_WALLET_PATH) -> str:
    """The SS58 hotkey of ``NAME/HOTKEY`` from its public file (no private key needed).

    Raises:
        FailedPrecondition: ``WALLET_NOT_FOUND`` when the wallet has no such hotkey.
    """
    name, _, hotkey = reference.partition("/")
    try:
        return str(_wallet_class()(name=name, hotkey=hotkey or "default", path=str(path)).hotkeypub.ss58_address)
    except Exception as exc:  # missing or unreadable public key file
        raise errors.FailedPrecondition(f"no public hotkey {reference!r} under {path}: {exc}",
                                        reason="WALLET_NOT_FOUND", metadata={"wallet": reference}) from exc
