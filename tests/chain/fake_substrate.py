"""An in-memory ``bittensor.Substrate`` for the SDK's own seam, ``Client(substrate=...)``.

It holds chain storage as a dict and records what the SDK asks of it: storage queries,
runtime calls, composed calls and signed submissions. The SDK's intents, preflights and
conformance code run for real on top of it; only the websocket is gone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bittensor import Balance, ExtrinsicResult


@dataclass
class Submission:
    """One extrinsic the SDK signed and submitted."""

    module: str
    function: str
    params: dict[str, Any]
    signer: str


@dataclass
class FakeSubstrate:
    storage: dict[tuple[str, str, tuple[Any, ...]], Any] = field(default_factory=dict)
    runtime: dict[tuple[str, str, tuple[Any, ...]], Any] = field(default_factory=dict)
    block: int = 1000
    fail_with: str = ""
    queries: list[tuple[str, str, list[Any]]] = field(default_factory=list)
    runtime_calls: list[tuple[str, str, list[Any]]] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    token_symbols: dict[int, str] = field(default_factory=dict)

    def balance(self, rao: int, netuid: int = 0) -> Balance:
        return Balance.from_rao(rao, netuid)

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def block_hash(self, block: int | None = None) -> str:
        return "0x" + f"{block or self.block:064x}"

    async def block_number(self) -> int:
        return self.block

    async def finalized_block_number(self) -> int:
        return self.block

    async def block_time(self) -> float:
        return 12.0

    async def spec_version(self) -> int:
        return 400

    async def query(self, module: str, storage_function: str, params: list | None = None,
                    block_hash: str | None = None) -> Any:
        self.queries.append((module, storage_function, list(params or [])))
        return self.storage.get((module, storage_function, tuple(params or [])))

    async def query_map(self, module: str, storage_function: str, params: list | None = None,
                        block_hash: str | None = None) -> list[tuple[Any, Any]]:
        self.queries.append((module, storage_function, list(params or [])))
        return []

    async def runtime_call(self, api: str, method: str, params: list, block_hash: str | None = None) -> Any:
        self.runtime_calls.append((api, method, list(params)))
        return self.runtime.get((api, method, tuple(params)))

    async def compose(self, call: Any) -> Any:
        return call

    async def estimate_fee(self, call: Any, keypair: Any) -> Balance:
        return Balance.from_rao(1000)

    async def submit(self, call: Any, keypair: Any, *, nonce: int | None = None, period: int | None = None,
                     wait_for_inclusion: bool = True, wait_for_finalization: bool = True) -> ExtrinsicResult:
        self.submissions.append(Submission(call.module, call.function, dict(call.params), keypair.ss58_address))
        if self.fail_with:
            return ExtrinsicResult(success=False, message=self.fail_with)
        return ExtrinsicResult(success=True, message="included", block_hash=await self.block_hash())
