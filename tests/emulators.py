"""The Google emulators the Firebase backends are tested against, one of each per test session.

- Firestore: Google's own emulator (Debian package ``google-cloud-cli-firestore-emulator``,
  Java 17), ``gcloud emulators firestore start --host-port=127.0.0.1:PORT``; the SDK finds it
  through ``FIRESTORE_EMULATOR_HOST``.
- Cloud Storage: ``gcp-storage-emulator`` (PyPI), in memory, with the test bucket created at
  start; the SDK finds it through ``STORAGE_EMULATOR_HOST``.

Each starts on first use, on a free loopback port, and stops when the session ends. When one
cannot start, tests that need it fail under CI (``CI=true``: a missing emulator must not turn
into a green run) and are skipped with the reason elsewhere.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import free_port

#: The bucket every Cloud Storage test uses (tests isolate themselves by object prefix).
TEST_BUCKET = "violet-test"
#: A project id of the kind emulators accept and Google never serves (``demo-`` prefix).
TEST_PROJECT = "demo-violet"
START_TIMEOUT = 60.0


def unavailable(message: str) -> None:
    """Fails the test under CI, skips it elsewhere."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: emulator tests must run, not skip)", pytrace=False)
    pytest.skip(message)


@dataclass
class Emulator:
    """One emulator process and the environment that points SDKs at it."""

    name: str
    argv: list[str]
    ready_url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    error: str = ""
    log: Path | None = None
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    def start(self) -> None:
        self.log = Path(tempfile.mkstemp(prefix=f"violet-{self.name}-", suffix=".log")[1])
        with self.log.open("wb") as out:
            # Its own session, so stopping it takes the whole process group (gcloud runs Java).
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} emulator exited with code {self.proc.returncode}: {self._tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"{self.name} emulator not ready after {START_TIMEOUT:.0f}s: {self._tail()}")
        for key, value in self.env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log and self.log.exists() else ""

    def stop(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc = None


class Emulators:
    """Starts each emulator once, on demand, and remembers a failure to start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, Emulator] = {}
        self._failed: dict[str, str] = {}

    def _ensure(self, name: str, make: object) -> Emulator:
        with self._lock:
            if name in self._failed:
                unavailable(self._failed[name])
            if name not in self._running:
                try:
                    emulator = make()  # type: ignore[operator]
                    emulator.start()
                except (OSError, RuntimeError) as exc:
                    self._failed[name] = f"the {name} emulator could not start: {exc}"
                    unavailable(self._failed[name])
                self._running[name] = emulator
            return self._running[name]

    def firestore(self) -> str:
        """``host:port`` of the Firestore emulator (started on first call)."""
        return self._ensure("firestore", _firestore).env["FIRESTORE_EMULATOR_HOST"]

    def storage(self) -> str:
        """``http://host:port`` of the Cloud Storage emulator, with ``TEST_BUCKET`` created."""
        return self._ensure("storage", _storage).env["STORAGE_EMULATOR_HOST"]

    def stop(self) -> None:
        with self._lock:
            for emulator in self._running.values():
                emulator.stop()
            self._running.clear()


def _firestore() -> Emulator:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise RuntimeError(
            "gcloud is not installed (apt-get install google-cloud-cli google-cloud-cli-firestore-emulator"
            " openjdk-17-jre-headless, or `make system-deps`)"
        )
    port = free_port()
    return Emulator(
        name="firestore",
        argv=[gcloud, "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}", "--quiet"],
        ready_url=f"http://127.0.0.1:{port}/",
        env={"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{port}", "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
    )


def _storage() -> Emulator:
    try:
        import gcp_storage_emulator  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("gcp-storage-emulator is not installed (pip install -e '.[dev]')") from exc
    port = free_port()
    return Emulator(
        name="storage",
        argv=[sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port),
              "--in-memory", "--default-bucket", TEST_BUCKET, "-q"],
        ready_url=f"http://127.0.0.1:{port}/storage/v1/b/{TEST_BUCKET}",
        env={"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"},
    )


@pytest.fixture(scope="session")
def emulators() -> object:
    """The session's emulators (each starts on first use)."""
    running = Emulators()
    yield running
    running.stop()
