"""Weights & Biases telemetry for proxy, miner and validator (offline run directory by default).

Each process has one :class:`Telemetry` (``current()``), configured from the environment
(``VIOLET_TELEMETRY``, ``WANDB_MODE``, ``WANDB_PROJECT``, ``WANDB_ENTITY``, ``WANDB_DIR``; see
:class:`TelemetrySettings`). Roles hook in without touching their domain code:

- proxy: :func:`instrument_proxy` wraps the task store and observes every task transition;
- miner: :func:`miner_interceptors` times and counts MinerService jobs;
- validator: :func:`log_scores` records scores and weights.

Recording never blocks or raises: events go to a bounded queue that a background thread
aggregates and logs; overflow is dropped and counted, W&B failures are logged and swallowed.
:func:`read_offline_history` reads an offline run's logged rows back (tests, quick looks).
"""
from __future__ import annotations

import atexit
import threading

from violet_grpc.telemetry.miner import miner_interceptors
from violet_grpc.telemetry.offline import find_offline_runs, read_offline_history
from violet_grpc.telemetry.proxy import instrument_proxy
from violet_grpc.telemetry.settings import TelemetrySettings
from violet_grpc.telemetry.sink import Telemetry
from violet_grpc.telemetry.validator import log_scores

__all__ = [
    "Telemetry",
    "TelemetrySettings",
    "current",
    "find_offline_runs",
    "install",
    "instrument_proxy",
    "log_scores",
    "miner_interceptors",
    "read_offline_history",
    "shutdown",
]

_lock = threading.Lock()
_current: Telemetry | None = None


def current() -> Telemetry:
    """This process's telemetry, created from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = Telemetry(TelemetrySettings.from_env())
        return _current


def install(telemetry: Telemetry) -> Telemetry | None:
    """Makes ``telemetry`` this process's (tests, embedders); returns the one it replaces."""
    global _current
    with _lock:
        previous, _current = _current, telemetry
    return previous


def shutdown() -> None:
    """Logs the last window and finishes the W&B run (called on exit, safe to call twice)."""
    global _current
    with _lock:
        telemetry, _current = _current, None
    if telemetry is not None:
        telemetry.close()


atexit.register(shutdown)
