"""LocalChain: the subnet as a JSON file, so a whole network runs on one machine without TAO.

The file holds each subnet's neurons (hotkey, coldkey, stake, validator permit, served
endpoint) and the weights validators set. Every process of ``violet up`` opens the same
file: writes take an exclusive ``flock`` and replace the file atomically, reads take a
shared lock and are cached until the file changes, so a proxy checking signatures reads it
once per change rather than once per call. Registration is an operator action (``violet
chain register``), exactly as ``btcli subnet register`` is on a real network.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from violet_grpc.chain.base import ChainError, Metagraph, Neuron

_EMPTY: dict[str, Any] = {"version": 1, "subnets": {}}


def _hotkey_of(wallet: Any) -> str:
    hotkey = getattr(wallet, "hotkey", None)
    address = getattr(hotkey, "ss58_address", None) or getattr(wallet, "ss58_address", None)
    if not address:
        raise ChainError("the wallet has no hotkey to sign with", reason="NO_HOTKEY")
    return str(address)


class LocalChain:
    """One subnet of a local registry file.

    Args:
        path: The registry file (created on first write).
        netuid: The subnet this object talks about.
    """

    network = "local"

    def __init__(self, path: Path | str, netuid: int = 49) -> None:
        self.path = Path(path)
        self.netuid = int(netuid)
        self._cache_key: tuple[int, int] | None = None
        self._cache: dict[str, Any] = _EMPTY

    # -- file access --------------------------------------------------------------------

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_unlocked(self) -> dict[str, Any]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return json.loads(json.dumps(_EMPTY))
        key = (stat.st_mtime_ns, stat.st_size)
        if key != self._cache_key:
            try:
                self._cache = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                raise ChainError(f"cannot read the local chain registry {self.path}: {exc}",
                                 reason="LOCAL_CHAIN_UNREADABLE") from exc
            self._cache_key = key
        return self._cache

    def _read(self) -> dict[str, Any]:
        with self._locked(exclusive=False):
            return self._read_unlocked()

    @contextmanager
    def _update(self) -> Iterator[dict[str, Any]]:
        """Yields the subnet's record for editing; writes it back atomically (one block later)."""
        with self._locked(exclusive=True):
            data = json.loads(json.dumps(self._read_unlocked()))
            subnet = data["subnets"].setdefault(str(self.netuid), {"block": 0, "neurons": [], "weights": {}})
            yield subnet
            subnet["block"] = int(subnet.get("block", 0)) + 1
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            with os.fdopen(fd, "w") as out:
                json.dump(data, out, indent=1, sort_keys=True)
            os.replace(tmp, self.path)

    def _subnet(self) -> dict[str, Any]:
        return self._read()["subnets"].get(str(self.netuid), {"block": 0, "neurons": [], "weights": {}})

    # -- administration (the local counterpart of btcli) -----------------------------------

    def register(self, hotkey: str, *, coldkey: str = "", stake: float | None = None,
                 validator_permit: bool | None = None) -> Neuron:
        """Registers a hotkey (or updates stake and permit of a registered one); returns the neuron."""
        if not hotkey:
            raise ChainError("a hotkey address is required", reason="NO_HOTKEY")
        with self._update() as subnet:
            neurons = subnet["neurons"]
            for record in neurons:
                if record["hotkey"] == hotkey:
                    if stake is not None:
                        record["stake"] = float(stake)
                    if validator_permit is not None:
                        record["validator_permit"] = bool(validator_permit)
                    if coldkey:
                        record["coldkey"] = coldkey
                    return Neuron(**record)
            neuron = Neuron(uid=len(neurons), hotkey=hotkey, coldkey=coldkey, stake=float(stake or 0.0),
                            validator_permit=bool(validator_permit))
            neurons.append(asdict(neuron))
            return neuron

    def weights(self, validator_uid: int) -> dict[int, float]:
        """The weights a validator set last ({uid: weight}, summing to 1)."""
        raw = self._subnet().get("weights", {}).get(str(validator_uid), {})
        return {int(uid): float(w) for uid, w in raw.items()}

    def neurons(self) -> list[Neuron]:
        """Every registered neuron, by uid."""
        return [Neuron(**record) for record in self._subnet()["neurons"]]

    # -- the Chain protocol -----------------------------------------------------------------

    async def uid(self, hotkey: str) -> int | None:
        for record in self._subnet()["neurons"]:
            if record["hotkey"] == hotkey:
                return int(record["uid"])
        return None

    async def metagraph(self) -> Metagraph:
        subnet = self._subnet()
        return Metagraph(netuid=self.netuid, block=int(subnet.get("block", 0)),
                         neurons=tuple(Neuron(**record) for record in subnet["neurons"]))

    async def serve(self, wallet: Any, ip: str, port: int) -> None:
        hotkey = _hotkey_of(wallet)
        with self._update() as subnet:
            record = next((r for r in subnet["neurons"] if r["hotkey"] == hotkey), None)
            if record is None:
                raise ChainError(f"hotkey {hotkey} is not registered on netuid {self.netuid}",
                                 reason="NOT_REGISTERED", metadata={"hotkey": hotkey})
            record["endpoint"] = f"{ip}:{int(port)}"

    async def set_weights(self, wallet: Any, weights: Mapping[int, float]) -> None:
        hotkey = _hotkey_of(wallet)
        total = sum(max(0.0, float(w)) for w in weights.values())
        if total <= 0:
            raise ChainError("all weights are zero; nothing to set", reason="ZERO_WEIGHTS")
        with self._update() as subnet:
            record = next((r for r in subnet["neurons"] if r["hotkey"] == hotkey), None)
            if record is None:
                raise ChainError(f"hotkey {hotkey} is not registered on netuid {self.netuid}",
                                 reason="NOT_REGISTERED", metadata={"hotkey": hotkey})
            if not record.get("validator_permit"):
                raise ChainError(f"hotkey {hotkey} has no validator permit on netuid {self.netuid}",
                                 reason="NO_VALIDATOR_PERMIT", metadata={"hotkey": hotkey})
            known = {r["uid"] for r in subnet["neurons"]}
            unknown = sorted(set(int(u) for u in weights) - known)
            if unknown:
                raise ChainError(f"weights name uids that are not registered: {unknown}", reason="UNKNOWN_UID")
            subnet.setdefault("weights", {})[str(record["uid"])] = {
                str(int(uid)): max(0.0, float(w)) / total for uid, w in sorted(weights.items())
            }

    async def close(self) -> None:
        return None

    def with_netuid(self, netuid: int) -> LocalChain:
        """The same registry file, another subnet."""
        return LocalChain(self.path, netuid)

    def __repr__(self) -> str:
        return f"LocalChain(path={str(self.path)!r}, netuid={self.netuid})"


__all__ = ["LocalChain"]
