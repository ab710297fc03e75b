"""The metrics sink: callers record events, a background thread aggregates them and logs to W&B.

Recording is a ``put_nowait`` on a bounded queue and nothing else, so serving code never
waits on W&B: when the queue is full the event is dropped (and counted). The thread owns the
W&B run: it starts it on the first flush (a process that records nothing creates no run),
aggregates each window of ``flush_seconds`` into one ``run.log`` call (counts, per-minute
rates, latency mean/p50/p95/max, error ratios, last values of gauges and samplers) and
swallows every W&B failure with a log line, after which it keeps draining the queue.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from violet_grpc.telemetry.settings import TelemetrySettings

log = logging.getLogger(__name__)

_STOP = object()
_FLUSH = object()
#: Consecutive W&B failures after which a process stops trying.
_MAX_FAILURES = 3


@dataclass
class _Window:
    """What was recorded since the last flush."""

    started: float = field(default_factory=time.monotonic)
    counts: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    gauges: dict[str, float] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.counts or self.samples or self.gauges)


class Telemetry:
    """One process's metrics, logged to one W&B run (offline by default)."""

    def __init__(self, settings: TelemetrySettings, *, run_name: str = "") -> None:
        self.settings = settings
        self.enabled = settings.active
        self.run_name = run_name or settings.run_name
        self.dropped = 0
        self.logged_steps = 0
        self.run_dir: Path | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, settings.queue_size))
        self._ratios: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._samplers: list[Callable[[], dict[str, float]]] = []
        self._totals: dict[str, float] = defaultdict(float)
        self._roles: set[str] = set()
        self._run: Any = None
        self._broken = False
        self._failures = 0
        #: The last W&B error swallowed (empty when none): for status pages and tests.
        self.last_error = ""
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="violet-telemetry", daemon=True)
            self._thread.start()

    # -- recording (any thread, never blocks) ---------------------------------------------

    def _put(self, item: Any) -> None:
        if not self.enabled or self._closed:
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def count(self, name: str, n: float = 1.0) -> None:
        """Adds to a counter; logged as the window's count, per-minute rate and running total."""
        self._put(("count", name, float(n)))

    def observe(self, name: str, value: float) -> None:
        """Records one measurement (a duration, a score); logged as mean/p50/p95/max."""
        self._put(("observe", name, float(value)))

    def gauge(self, name: str, value: float) -> None:
        """Sets a value that holds until changed (a score, a weight); logged as is."""
        self._put(("gauge", name, float(value)))

    def role(self, name: str) -> None:
        """Notes that this process plays a role (proxy, miner, validator); goes into the run config."""
        self._roles.add(name)

    def ratio(self, name: str, numerator: str, *denominator: str) -> None:
        """Logs ``name`` = numerator / sum(denominator) counts of each window that has any."""
        self._ratios[name] = (numerator, denominator)

    def sampler(self, fn: Callable[[], dict[str, float]]) -> None:
        """A callable the telemetry thread calls at each flush for current values (must be quick)."""
        self._samplers.append(fn)

    def flush(self) -> None:
        """Asks the thread to log what it has now rather than at the end of the window."""
        self._put(_FLUSH)

    def close(self, timeout: float = 30.0) -> None:
        """Logs the last window, finishes the W&B run and stops the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("telemetry queue stayed full; the last window is lost")
            return
        self._thread.join(timeout)

    # -- the thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        window = _Window()
        deadline = time.monotonic() + self.settings.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = _FLUSH
            if item is _STOP or item is _FLUSH:
                self._flush(window)
                window = _Window()
                deadline = time.monotonic() + self.settings.flush_seconds
                if item is _STOP:
                    self._finish()
                    return
                continue
            kind, name, value = item
            if kind == "count":
                window.counts[name] += value
            elif kind == "observe":
                window.samples[name].append(value)
            else:
                window.gauges[name] = value
            if time.monotonic() >= deadline:
                self._flush(window)
                window = _Window()
                deadline = time.monotonic() + self.settings.flush_seconds

    def _metrics(self, window: _Window) -> dict[str, float]:
        # At least a second, so a window cut short by close() does not report absurd rates.
        seconds = max(time.monotonic() - window.started, 1.0)
        metrics: dict[str, float] = {}
        for name, n in window.counts.items():
            self._totals[name] += n
            metrics[name] = n
            metrics[f"{name}_per_min"] = n * 60.0 / seconds
        for name in self._totals:
            metrics[f"{name}_total"] = self._totals[name]
        for name, values in window.samples.items():
            ordered = sorted(values)
            metrics[f"{name}_mean"] = sum(ordered) / len(ordered)
            metrics[f"{name}_p50"] = _quantile(ordered, 0.5)
            metrics[f"{name}_p95"] = _quantile(ordered, 0.95)
            metrics[f"{name}_max"] = ordered[-1]
            metrics[f"{name}_count"] = float(len(ordered))
        for name, (numerator, denominator) in self._ratios.items():
            total = sum(window.counts.get(d, 0.0) for d in denominator)
            if total:
                metrics[name] = window.counts.get(numerator, 0.0) / total
        metrics.update(window.gauges)
        for fn in self._samplers:
            try:
                metrics.update(fn())
            except Exception:  # a sampler must never stop telemetry
                log.debug("telemetry sampler failed", exc_info=True)
        if self.dropped:
            metrics["telemetry/dropped_total"] = float(self.dropped)
        return metrics

    def _flush(self, window: _Window) -> None:
        if window.empty():
            return
        metrics = self._metrics(window)
        if self._broken:
            return
        try:
            if self._run is None:
                self._run = self._start_run()
            self._run.log(metrics)
            self.logged_steps += 1
            self._failures = 0
        except Exception as exc:
            # Swallowed: metrics must never hurt serving. A few failures in a row turn W&B
            # off for this process; the window's metrics are lost either way.
            self._failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._broken = self._failures >= _MAX_FAILURES
            log.warning("W&B logging failed (%d in a row%s): %s", self._failures,
                        "; telemetry is off for this process" if self._broken else "", self.last_error,
                        exc_info=True)

    def _start_run(self) -> Any:
        import wandb

        s = self.settings
        directory = Path(s.wandb_dir)
        directory.mkdir(parents=True, exist_ok=True)
        roles = sorted(self._roles) or ["violet"]
        run = wandb.init(
            project=s.wandb_project,
            entity=s.wandb_entity or None,
            mode=s.wandb_mode,  # type: ignore[arg-type]  # checked in TelemetrySettings.from_env
            dir=str(directory),
            name=self.run_name or "-".join(roles),
            job_type="-".join(roles),
            config={"roles": roles, "flush_seconds": s.flush_seconds},
            reinit="create_new",
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True, save_code=False),
        )
        self.run_dir = Path(run.dir).parent  # run.dir is <run>/files
        log.info("W&B %s run %s in %s", s.wandb_mode, run.id, self.run_dir)
        return run

    def _finish(self) -> None:
        if self._run is None or self._broken:
            return
        try:
            self._run.finish()
        except Exception as exc:
            log.warning("W&B run did not finish cleanly: %s", exc)
            return
        if self.settings.wandb_mode == "offline" and self.run_dir is not None:
            self._wait_for_run_file(self.run_dir)

    def _wait_for_run_file(self, run_dir: Path, timeout: float = 10.0) -> None:
        """Waits until W&B's service has written every logged row to the offline run file.

        ``run.finish()`` returns before the service flushes its last block (seen with wandb
        0.31: right after finish a run file sometimes held none of the rows); waiting here
        means a closed Telemetry's run directory is complete, whatever happens next.
        """
        from violet_grpc.telemetry.offline import read_offline_history

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(read_offline_history(run_dir)) >= self.logged_steps:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        log.warning("W&B run file in %s is still incomplete after %.0f s", run_dir, timeout)


def _quantile(ordered: list[float], q: float) -> float:
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]
