"""Hotkey-signed gRPC calls (btauth/1 in metadata): client and server interceptors, nonce stores."""
from __future__ import annotations

from violet_grpc.auth.client import signed_channel, signing_interceptors
from violet_grpc.auth.nonces import MemoryNonceStore, NonceStore, SqliteNonceStore
from violet_grpc.auth.policy import MethodRule, Role, miner_rules, proxy_rules
from violet_grpc.auth.server import AuthInterceptor, Caller, current_caller
from violet_grpc.auth.wallets import DEFAULT_WALLET_PATH, create_wallet, hotkey_address, load_wallet

__all__ = [
    "DEFAULT_WALLET_PATH",
    "AuthInterceptor",
    "Caller",
    "MemoryNonceStore",
    "MethodRule",
    "NonceStore",
    "Role",
    "SqliteNonceStore",
    "create_wallet",
    "current_caller",
    "hotkey_address",
    "load_wallet",
    "miner_rules",
    "proxy_rules",
    "signed_channel",
    "signing_interceptors",
]
