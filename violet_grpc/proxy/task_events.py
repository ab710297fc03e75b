"""In-process change notifications for tasks, so WatchTask and waits need not poll hard.

Another proxy replica's changes are not seen here, so waiters also re-read the store every
``fallback_seconds``: correct across replicas, prompt within one.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict


class TaskEvents:
    """Wakes whoever waits on a task id when that task changes."""

    def __init__(self, fallback_seconds: float = 1.0) -> None:
        self.fallback_seconds = fallback_seconds
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)

    def changed(self, task_id: str) -> None:
        """Signals every waiter of ``task_id``."""
        for event in self._events.get(task_id, ()):
            event.set()

    async def wait(self, task_id: str, timeout: float | None = None) -> None:
        """Returns after the task changes, the fallback interval passes, or ``timeout``."""
        event = asyncio.Event()
        self._events[task_id].add(event)
        limit = self.fallback_seconds if timeout is None else min(timeout, self.fallback_seconds)
        try:
            await asyncio.wait_for(event.wait(), timeout=limit)
        except asyncio.TimeoutError:
            pass
        finally:
            self._events[task_id].discard(event)
            if not self._events[task_id]:
                self._events.pop(task_id, None)
