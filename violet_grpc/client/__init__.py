"""A small typed client for Violet's public gRPC API (used by the CLI and tests)."""
from __future__ import annotations

from violet_grpc.client.client import StreamEvent, VioletClient

__all__ = ["StreamEvent", "VioletClient"]
