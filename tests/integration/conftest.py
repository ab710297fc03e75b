"""Integration tests use the server fixtures of tests/servers.py (loaded by tests/conftest.py)."""
from __future__ import annotations

from tests.servers import LocalNet, start_local_net, stop_local_net

__all__ = ["LocalNet", "start_local_net", "stop_local_net"]
