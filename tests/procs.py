"""Proxy and fake miners as child processes, for tests and benchmarks that watch a process.

A proxy in its own process can be measured (CPU, RSS with psutil), killed, frozen or given
resource limits without touching the test runner; the miners here run the trivial engines
of :mod:`tests.fake_miner`, so they start in about a second.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[1]


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None,
           preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "VIOLET_TELEMETRY": "off", **(env or {})}
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=environment,
                                preexec_fn=preexec_fn)


def start_fake_miner(port: int, log: Path, *, kind: str = "echo", max_slots: int = 4096,
                     miner_id: str = "fake-miner") -> subprocess.Popen[bytes]:
    """A miner with trivial engines (``kind`` echo or hang) on ``port``, auth off."""
    argv = [sys.executable, "-m", "tests.fake_miner", "--port", str(port), "--kind", kind,
            "--max-slots", str(max_slots), "--miner-id", miner_id]
    return _spawn(argv, log)


def start_proxy(port: int, home: Path, miners: Sequence[str], *, extra: Sequence[str] = (),
                heartbeat_seconds: float = 1.0, env: dict[str, str] | None = None,
                preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    """The real proxy process (SQLite and local files under ``home``), auth off.

    Tests probe miners every second so faults show quickly; benchmarks pass the deployed
    default (5 s), since a probe's timeout is one interval and a loaded miner answers slowly.
    """
    argv = [sys.executable, "-m", "violet_grpc.proxy.server", "--port", str(port), "--auth", "off",
            "--task-store", str(home / "tasks.db"), "--file-store", str(home / "files"),
            "--miners", ",".join(miners), "--heartbeat-seconds", str(heartbeat_seconds), *extra]
    return _spawn(argv, home / f"proxy-{time.monotonic_ns()}.log", env, preexec_fn)


def wait_serving(address: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60.0) -> None:
    """Blocks until the gRPC health check at ``address`` says SERVING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {address} exited with code {proc.returncode}")
        try:
            with grpc.insecure_channel(address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"nothing serving at {address} after {timeout:.0f} s")


def wait_miners_online(address: str, count: int, timeout: float = 30.0) -> None:
    """Blocks until the proxy at ``address`` reports ``count`` miners online."""
    from violet.v1 import system_pb2, system_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = system_pb2_grpc.SystemServiceStub(channel)
        while time.monotonic() < deadline:
            if stub.GetStatus(system_pb2.GetStatusRequest(), timeout=5).miners_online >= count:
                return
            time.sleep(0.1)
    raise TimeoutError(f"fewer than {count} miners online at {address}")


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
