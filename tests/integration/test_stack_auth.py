"""`violet up` is a signed subnet by default: wallets, LocalChain registrations, a validator.

Starts the real processes (miner neuron, proxy, validator neuron) the way `violet up`
does, then checks as an outsider would: unsigned gateway and miner calls are refused, the
miner's endpoint is on the local chain, user traffic still flows (the proxy's calls to the
miner are signed), and the validator sets weights on the local chain.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from violet.v1 import miner_gateway_pb2, miner_gateway_pb2_grpc, miner_pb2, miner_pb2_grpc

from tests.helpers import free_port
from tests.servers import _engine_names
from violet_grpc.rpc_errors import from_rpc_error
from violet_grpc.stack import Stack, StackConfig, prepare_identities

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def signed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    config = StackConfig(home=tmp_path_factory.mktemp("violet-up"), proxy_port=free_port(), miner_port=free_port(),
                         rest_port=None, engines=_engine_names(), validator_round_seconds=3,
                         validator_epoch_seconds=4)
    assert config.auth and config.validator, "violet up signs calls and runs a validator by default"
    running = Stack(config)
    try:
        running.start(timeout=180)
        yield config
    finally:
        running.stop()


def test_unsigned_calls_to_gateways_and_miner_are_refused(signed_stack: StackConfig):
    c = signed_stack
    with grpc.insecure_channel(f"{c.host}:{c.proxy_port}") as channel:
        with pytest.raises(grpc.RpcError) as caught:
            miner_gateway_pb2_grpc.MinerGatewayServiceStub(channel).Heartbeat(
                miner_gateway_pb2.HeartbeatRequest(miner_id="anyone"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert from_rpc_error(caught.value).reason == "MISSING_SIGNATURE"
    with grpc.insecure_channel(f"{c.host}:{c.miner_port}") as channel:
        with pytest.raises(grpc.RpcError) as caught:
            miner_pb2_grpc.MinerServiceStub(channel).Transcribe(miner_pb2.TranscribeRequest(content=b"x"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_wallets_registrations_and_published_endpoint(signed_stack: StackConfig):
    c = signed_stack
    hotkeys = prepare_identities(c.home)  # idempotent: the same wallets the stack made
    chain = json.loads((c.home / "chain.json").read_text())["subnets"]["49"]
    neurons = {n["hotkey"]: n for n in chain["neurons"]}
    assert neurons[hotkeys["miner"]]["endpoint"] == f"{c.host}:{c.miner_port}"
    assert neurons[hotkeys["validator"]]["validator_permit"] is True
    assert hotkeys["proxy"] not in neurons
    assert (c.home / "wallets" / "violet-miner" / "hotkeys" / "default").exists()


def test_validator_sets_weights_on_the_local_chain(signed_stack: StackConfig):
    c = signed_stack
    hotkeys = prepare_identities(c.home)
    deadline = time.monotonic() + 120
    weights: dict = {}
    while time.monotonic() < deadline and not weights:
        chain = json.loads((c.home / "chain.json").read_text())["subnets"]["49"]
        validator_uid = next(n["uid"] for n in chain["neurons"] if n["hotkey"] == hotkeys["validator"])
        weights = chain.get("weights", {}).get(str(validator_uid), {})
        time.sleep(1)
    miner_uid = next(n["uid"] for n in chain["neurons"] if n["hotkey"] == hotkeys["miner"])
    log = (c.home / "logs" / "validator.log").read_text()
    assert weights == {str(miner_uid): 1.0}, log[-3000:]
    assert "weights set on netuid 49" in log
    assert (Path(c.home) / "validator" / "weights.jsonl").exists()
