"""How much work a miner holds at once; reported to the proxy as free slots."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from violet_grpc import errors


class Slots:
    """A counter of running jobs with a hard limit.

    Refusing (RESOURCE_EXHAUSTED) rather than queueing keeps latency honest: the proxy
    sees free capacity in the capabilities and sends work where there is room.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.in_use = 0

    @property
    def free(self) -> int:
        """Jobs that can start now."""
        return self.limit - self.in_use

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Takes a slot for the duration of a job, or refuses when none is free."""
        if self.in_use >= self.limit:
            raise errors.ResourceExhausted(
                f"the miner is busy ({self.limit} jobs running)",
                reason="MINER_BUSY",
                metadata={"max_slots": str(self.limit)},
            )
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
