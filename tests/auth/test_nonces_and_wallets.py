"""Nonce stores (replays refused, also across processes sharing a file) and wallet files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from bittensor import Wallet, http_auth

from violet_grpc import errors
from violet_grpc.auth import MemoryNonceStore, SqliteNonceStore, create_wallet, load_wallet
from violet_grpc.cli import main as violet


def test_memory_store_refuses_a_replay_and_forgets_after_retention():
    store = MemoryNonceStore(retention=0.0)
    assert store.check_and_store("5A", 1)
    assert store.check_and_store("5A", 1)  # retention 0: already forgotten
    kept = MemoryNonceStore(retention=60)
    assert kept.check_and_store("5A", 1) and not kept.check_and_store("5A", 1) and kept.check_and_store("5B", 1)


def test_sqlite_store_is_shared_by_two_handles(tmp_path: Path):
    first, second = SqliteNonceStore(tmp_path / "n.db"), SqliteNonceStore(tmp_path / "n.db")
    assert first.check_and_store("5A", 42)
    assert not second.check_and_store("5A", 42)  # another replica saw it already


def test_sdk_verify_uses_our_store(tmp_path: Path):
    wallet = create_wallet("w", "h", tmp_path)
    headers = http_auth.sign(wallet, method="POST", path="/x/Y", body=b"b", receiver_ss58="5R")
    store = SqliteNonceStore(tmp_path / "n.db")
    http_auth.verify(headers, b"b", method="POST", path="/x/Y", self_hotkey_ss58="5R", nonce_store=store)
    with pytest.raises(http_auth.ReplayedRequest):
        http_auth.verify(headers, b"b", method="POST", path="/x/Y", self_hotkey_ss58="5R", nonce_store=store)


def test_wallet_files_have_the_btcli_layout(tmp_path: Path):
    created = create_wallet("cold", "hot", tmp_path)
    assert (tmp_path / "cold" / "coldkeypub.txt").exists() and (tmp_path / "cold" / "hotkeys" / "hot").exists()
    again = Wallet(name="cold", hotkey="hot", path=str(tmp_path))  # what btcli / the SDK open
    assert again.hotkey.ss58_address == created.hotkey.ss58_address
    assert create_wallet("cold", "hot", tmp_path).hotkey.ss58_address == created.hotkey.ss58_address  # idempotent
    with pytest.raises(errors.FailedPrecondition) as caught:
        load_wallet("cold", "missing", tmp_path)
    assert "violet wallet create --wallet.name cold --wallet.hotkey missing" in caught.value.message


def test_violet_wallet_create_and_chain_register(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    chain = tmp_path / "chain.json"
    violet(["wallet", "create", "--wallet.name", "m", "--wallet.path", str(tmp_path / "w"), "--register",
            "--local-chain", str(chain)])
    violet(["wallet", "create", "--wallet.name", "v", "--wallet.path", str(tmp_path / "w")])
    violet(["chain", "register", "--wallet.name", "v", "--wallet.path", str(tmp_path / "w"), "--local-chain", str(chain),
            "--stake", "1000", "--validator-permit"])
    capsys.readouterr()
    violet(["chain", "list", "--local-chain", str(chain)])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["uid"], r["validator_permit"], r["stake"]) for r in rows] == [(0, False, 0.0), (1, True, 1000.0)]


def test_proxy_hotkey_may_name_a_wallet(tmp_path: Path):
    from violet_grpc.auth.identity import load_identity
    from violet_grpc.settings import ValidatorSettings

    proxy = create_wallet("violet-proxy", "default", tmp_path)
    create_wallet("v", "default", tmp_path)
    settings = ValidatorSettings(wallet_name="v", wallet_path=str(tmp_path), local_chain=str(tmp_path / "c.json"),
                                 proxy_hotkey="wallet:violet-proxy/default")
    load_identity(settings)
    assert settings.proxy_hotkey == proxy.hotkey.ss58_address
