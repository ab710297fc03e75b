"""BittensorChain against the SDK's own seam: a fake substrate under a real ``bittensor.Client``.

Nothing of our adapter is mocked: the SDK's reads, ``ServeAxon`` and ``SetWeights`` intents
(preflight, conformance to the subnet's limits, commit-reveal choice) run for real, and the
tests assert on the storage reads and the extrinsics the SDK would send to the chain.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from tests.chain.fake_substrate import FakeSubstrate
from violet_grpc.auth import create_wallet
from violet_grpc.chain import ChainError, NotRegisteredError, chain_from_settings, require_registered
from violet_grpc.chain.bittensor_chain import BittensorChain

ST = "SubtensorModule"
NETUID = 49


@pytest.fixture
def wallet(tmp_path: Path):
    return create_wallet("validator", "hot", tmp_path / "wallets")


@pytest.fixture
def substrate(wallet) -> FakeSubstrate:
    fake = FakeSubstrate()
    fake.storage[(ST, "Uids", (NETUID, wallet.hotkey.ss58_address))] = 3
    fake.storage[(ST, "MaxWeightsLimit", (NETUID,))] = 65535
    return fake


def chain(substrate: FakeSubstrate, network: str = "finney") -> BittensorChain:
    made = chain_from_settings(network, 0 if network in ("finney", "test") else NETUID, substrate=substrate)
    assert isinstance(made, BittensorChain)
    return made


async def test_registration_check_reads_the_uids_map(substrate, wallet):
    hotkey = wallet.hotkey.ss58_address
    assert await chain(substrate).uid(hotkey) == 3
    assert (ST, "Uids", [NETUID, hotkey]) in substrate.queries
    stranger = "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM"
    assert await chain(substrate).uid(stranger) is None


async def test_unregistered_hotkey_error_names_the_btcli_command(substrate):
    stranger = "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM"
    with pytest.raises(NotRegisteredError) as caught:
        await require_registered(chain(substrate, "test"), stranger, wallet_name="w", wallet_hotkey="h")
    assert "btcli subnet register --netuid 424 --wallet.name w --wallet.hotkey h --subtensor.network test" in \
        caught.value.message


async def test_publishing_the_endpoint_sends_serve_axon_signed_by_the_hotkey(substrate, wallet):
    await chain(substrate).serve(wallet, "203.0.113.7", 8091)
    [sent] = substrate.submissions
    assert (sent.module, sent.function) == (ST, "serve_axon")
    assert sent.signer == wallet.hotkey.ss58_address
    assert sent.params["netuid"] == NETUID
    assert sent.params["ip"] == int(ipaddress.ip_address("203.0.113.7"))
    assert (sent.params["port"], sent.params["ip_type"]) == (8091, 4)


async def test_publishing_a_hostname_is_refused_before_the_chain(substrate, wallet):
    with pytest.raises(ChainError) as caught:
        await chain(substrate).serve(wallet, "miner.example", 8091)
    assert caught.value.reason == "INVALID_IP"
    assert substrate.submissions == []


async def test_set_weights_sends_normalised_u16_weights_by_uid(substrate, wallet):
    await chain(substrate).set_weights(wallet, {0: 0.5, 1: 0.25, 5: 0.25})
    [sent] = substrate.submissions
    assert (sent.module, sent.function) == (ST, "set_mechanism_weights")
    assert sent.signer == wallet.hotkey.ss58_address
    assert sent.params["netuid"] == NETUID
    assert sent.params["dests"] == [0, 1, 5]
    assert sent.params["weights"] == [65535, 32768, 32768]


async def test_set_weights_commits_timelocked_when_the_subnet_runs_commit_reveal(substrate, wallet):
    substrate.storage.update({
        (ST, "CommitRevealWeightsEnabled", (NETUID,)): True,
        (ST, "Tempo", (NETUID,)): 360,
        (ST, "RevealPeriodEpochs", (NETUID,)): 1,
    })
    await chain(substrate).set_weights(wallet, {0: 0.2, 1: 0.8})
    [sent] = substrate.submissions
    assert (sent.module, sent.function) == (ST, "commit_timelocked_mechanism_weights")
    assert sent.params["netuid"] == NETUID and sent.params["commit"] and sent.params["reveal_round"] > 0


async def test_set_weights_from_an_unregistered_hotkey_fails_before_signing(tmp_path):
    other = create_wallet("other", "hot", tmp_path / "w2")
    fake = FakeSubstrate()
    with pytest.raises(ChainError) as caught:
        await chain(fake).set_weights(other, {0: 1.0})
    assert caught.value.reason == "CHAIN_REFUSED"
    assert fake.submissions == []


async def test_a_refused_extrinsic_is_a_chain_error(substrate, wallet):
    substrate.fail_with = "ServingRateLimitExceeded"
    with pytest.raises(ChainError) as caught:
        await chain(substrate).serve(wallet, "203.0.113.7", 8091)
    assert "ServingRateLimitExceeded" in caught.value.message


async def test_metagraph_maps_stake_permit_and_served_endpoint(substrate):
    graph = {
        "netuid": NETUID, "block": 1000, "tempo": 360, "last_step": 900, "blocks_since_last_step": 100,
        "owner_hotkey": "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM",
        "owner_coldkey": "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM", "network_registered_at": 1,
        "hotkeys": ["5HotkeyA", "5HotkeyB"], "coldkeys": ["5ColdA", "5ColdB"],
        "axons": [{"ip": int(ipaddress.ip_address("198.51.100.4")), "port": 8091, "ip_type": 4}, {"ip": 0, "port": 0}],
        "validator_permit": [False, True], "active": [True, True],
        "total_stake": [0, 1500 * 10**9],
    }
    substrate.runtime[("SubnetInfoRuntimeApi", "get_metagraph", (NETUID,))] = graph
    snapshot = await chain(substrate).metagraph()
    a, b = snapshot.neuron("5HotkeyA"), snapshot.neuron("5HotkeyB")
    assert (a.uid, a.endpoint, a.validator_permit) == (0, "198.51.100.4:8091", False)
    assert (b.uid, b.endpoint, b.validator_permit, b.stake) == (1, "", True, 1500.0)
    assert snapshot.neuron("") is None and snapshot.neuron("5Nobody") is None
