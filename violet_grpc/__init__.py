"""Violet: a gRPC-native decentralized audio-processing network on Bittensor."""
from __future__ import annotations

__version__ = "0.1.0"
