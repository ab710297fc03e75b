"""LocalChain: the embedded registry every process of `violet up` shares."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from violet_grpc.auth import create_wallet
from violet_grpc.chain import ChainError, LocalChain, NotRegisteredError, chain_from_settings, require_registered
from violet_grpc.chain.cache import MetagraphCache
from violet_grpc.errors import InvalidArgument


async def test_register_serve_and_read_back_across_handles(tmp_path: Path):
    path = tmp_path / "chain.json"
    admin = LocalChain(path, 49)
    miner = create_wallet("miner", "default", tmp_path / "w")
    validator = create_wallet("validator", "default", tmp_path / "w")
    m = admin.register(miner.hotkey.ss58_address)
    v = admin.register(validator.hotkey.ss58_address, stake=1000, validator_permit=True)
    assert (m.uid, v.uid) == (0, 1)
    other = LocalChain(path, 49)  # another process opening the same file
    await other.serve(miner, "127.0.0.1", 50061)
    graph = await admin.metagraph()
    assert graph.neuron(miner.hotkey.ss58_address).endpoint == "127.0.0.1:50061"
    assert [n.hotkey for n in graph.validators] == [validator.hotkey.ss58_address]
    assert await other.uid(validator.hotkey.ss58_address) == 1
    # Registering again updates, never duplicates.
    assert admin.register(validator.hotkey.ss58_address, stake=5).uid == 1
    assert len(await admin.metagraph()) == 2
    assert json.loads(path.read_text())["subnets"]["49"]["neurons"][1]["stake"] == 5


async def test_weights_need_a_permit_and_known_uids(tmp_path: Path):
    chain = LocalChain(tmp_path / "chain.json", 49)
    validator = create_wallet("validator", "default", tmp_path / "w")
    miner = create_wallet("miner", "default", tmp_path / "w")
    chain.register(miner.hotkey.ss58_address)
    chain.register(validator.hotkey.ss58_address, stake=10, validator_permit=True)
    with pytest.raises(ChainError) as caught:
        await chain.set_weights(miner, {0: 1.0})
    assert caught.value.reason == "NO_VALIDATOR_PERMIT"
    with pytest.raises(ChainError) as caught:
        await chain.set_weights(validator, {7: 1.0})
    assert caught.value.reason == "UNKNOWN_UID"
    await chain.set_weights(validator, {0: 3.0, 1: 1.0})
    assert chain.weights(1) == {0: 0.75, 1: 0.25}


async def test_unregistered_neuron_gets_the_command_to_run(tmp_path: Path):
    chain = chain_from_settings("local", 0, local_path=tmp_path / "chain.json")
    with pytest.raises(NotRegisteredError) as caught:
        await require_registered(chain, "5Stranger", wallet_name="w", wallet_hotkey="h")
    assert "violet chain register --wallet.name w --wallet.hotkey h" in caught.value.message


async def test_membership_is_checked_by_hotkey_and_refreshes_once_on_a_miss(tmp_path: Path):
    chain = LocalChain(tmp_path / "chain.json", 49)
    cache = MetagraphCache(chain, ttl=3600, miss_refresh=0)
    assert await cache.neuron("") is None
    assert await cache.neuron("5Late") is None
    chain.register("5Late", stake=1)
    neuron = await cache.neuron("5Late")  # registered after the snapshot: a miss refreshes
    assert neuron is not None and neuron.uid == 0


def test_unknown_network_is_a_clear_error(tmp_path: Path):
    with pytest.raises(InvalidArgument) as caught:
        chain_from_settings("mainnet", 49)
    assert caught.value.reason == "UNKNOWN_NETWORK"
    with pytest.raises(InvalidArgument):
        chain_from_settings("ws://127.0.0.1:9944", 0)
