"""Nonce stores: which (hotkey, nonce) pairs were accepted already, so a replay is refused.

A nonce only has to be remembered while it is fresh: anything older than the freshness
window is refused as stale before the store is asked. ``MemoryNonceStore`` serves one
process; ``SqliteNonceStore`` lets several processes on one machine (proxy replicas on one
disk) share the memory through one file.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Protocol


class NonceStore(Protocol):
    """Remembers accepted nonces (``bittensor.http_auth.NonceStore``, plus its retention)."""

    #: Seconds an accepted nonce is remembered; must cover the verifier's freshness window.
    retention: float

    def check_and_store(self, hotkey_ss58: str, nonce_ns: int) -> bool:
        """True (and remembered) the first time a pair is seen, False for a replay."""
        ...


class MemoryNonceStore:
    """Accepted nonces of one process, forgotten after ``retention`` seconds."""

    def __init__(self, retention: float = 60.0) -> None:
        self.retention = retention
        self._seen: set[tuple[str, int]] = set()
        self._expiry: deque[tuple[float, tuple[str, int]]] = deque()
        self._lock = threading.Lock()

    def check_and_store(self, hotkey_ss58: str, nonce_ns: int) -> bool:
        key = (hotkey_ss58, int(nonce_ns))
        now = time.monotonic()
        with self._lock:
            while self._expiry and self._expiry[0][0] <= now:
                self._seen.discard(self._expiry.popleft()[1])
            if key in self._seen:
                return False
            self._seen.add(key)
            self._expiry.append((now + self.retention, key))
            return True

    def __len__(self) -> int:
        return len(self._seen)


class SqliteNonceStore:
    """Accepted nonces in a SQLite file shared by processes on one machine."""

    def __init__(self, path: Path | str, retention: float = 60.0) -> None:
        self.retention = retention
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS nonces (hotkey TEXT NOT NULL, nonce INTEGER NOT NULL,"
                         " expires REAL NOT NULL, PRIMARY KEY (hotkey, nonce))")
        self._lock = threading.Lock()

    def check_and_store(self, hotkey_ss58: str, nonce_ns: int) -> bool:
        now = time.time()
        with self._lock:
            self._db.execute("DELETE FROM nonces WHERE expires <= ?", (now,))
            cursor = self._db.execute("INSERT OR IGNORE INTO nonces(hotkey, nonce, expires) VALUES (?,?,?)",
                                      (hotkey_ss58, int(nonce_ns), now + self.retention))
            return cursor.rowcount == 1

    def close(self) -> None:
        self._db.close()
