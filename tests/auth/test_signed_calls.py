"""Signed calls end to end: a real proxy and a real miner server on loopback, LocalChain wallets.

Every refusal the issue names is exercised with a real client against the real
interceptor: forged signature, wrong receiver, stale nonce, replayed nonce, unregistered
hotkey, validator RPC without permit; plus identity mismatch, minimum stake, and the
public services staying open.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from bittensor import http_auth
from grpc_health.v1 import health_pb2, health_pb2_grpc
from violet.v1 import (
    miner_gateway_pb2,
    miner_gateway_pb2_grpc,
    miner_pb2,
    miner_pb2_grpc,
    streaming_pb2,
    system_pb2,
    system_pb2_grpc,
    validator_gateway_pb2,
    validator_gateway_pb2_grpc,
)

from tests.chainnet import Keys, make_keys
from violet_grpc.miner.engine_loader import Engines
from violet_grpc.miner.server import create_server as create_miner
from violet_grpc.proxy.server import create_server as create_proxy
from violet_grpc.rpc_errors import from_rpc_error
from violet_grpc.settings import MinerSettings, ProxySettings

HEARTBEAT = "/violet.v1.MinerGatewayService/Heartbeat"


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[tuple[Keys, str, str]]:
    """Proxy and miner with auth on; wallets: proxy, miner, validator (permit), weak validator, stranger."""
    keys = make_keys(tmp_path)
    keys.create("proxy", register=False)
    keys.create("miner")
    keys.create("validator", stake=500.0, permit=True)
    keys.create("minnow", stake=5.0, permit=True)
    keys.create("stranger", register=False)
    proxy = await create_proxy(ProxySettings(port=0, task_store=str(tmp_path / "tasks.db"),
                                             file_store=str(tmp_path / "files"), min_validator_stake=100.0,
                                             **keys.settings("proxy")))
    miner_settings = MinerSettings(port=0, max_slots=1, proxy_hotkey=keys.hotkey("proxy"),
                                   min_validator_stake=100.0, **keys.settings("miner"))
    miner, miner_port, _ = await create_miner(miner_settings, Engines())
    yield keys, f"127.0.0.1:{proxy.port}", f"127.0.0.1:{miner_port}"
    await miner.stop(0)
    await proxy.stop(0)


def heartbeat(keys: Keys, who: str = "miner") -> miner_gateway_pb2.HeartbeatRequest:
    return miner_gateway_pb2.HeartbeatRequest(miner_id=keys.hotkey(who))


def signed(keys: Keys, who: str, body: bytes, *, receiver: str | None, path: str = HEARTBEAT,
           nonce_ns: int | None = None) -> list[tuple[str, str]]:
    headers = http_auth.sign(keys.wallets[who], method="POST", path=path, body=body, receiver_ss58=receiver,
                             nonce_ns=nonce_ns)
    return [(k.lower(), v) for k, v in headers.items()]


def refusal(exc: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str]:
    return exc.code(), from_rpc_error(exc).reason


async def call_heartbeat(proxy: str, request: object, metadata: list[tuple[str, str]] | None) -> object:
    async with grpc.aio.insecure_channel(proxy) as channel:
        return await miner_gateway_pb2_grpc.MinerGatewayServiceStub(channel).Heartbeat(request, metadata=metadata,
                                                                                        timeout=5)


async def test_registered_miner_with_valid_signature_is_admitted(net):
    keys, proxy, _ = net
    async with keys.channel("miner", proxy, keys.hotkey("proxy")) as channel:
        reply = await miner_gateway_pb2_grpc.MinerGatewayServiceStub(channel).Heartbeat(heartbeat(keys), timeout=5)
    assert reply.heartbeat_interval_seconds > 0


async def test_missing_signature_is_unauthenticated(net):
    keys, proxy, _ = net
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_heartbeat(proxy, heartbeat(keys), None)
    assert refusal(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING_SIGNATURE")


async def test_forged_signature_is_unauthenticated(net):
    keys, proxy, _ = net
    request = heartbeat(keys)
    # The stranger signs, then claims to be the miner: the signature does not verify for that hotkey.
    metadata = [(k, keys.hotkey("miner") if k == "x-bittensor-hotkey" else v)
                for k, v in signed(keys, "stranger", request.SerializeToString(), receiver=keys.hotkey("proxy"))]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_heartbeat(proxy, request, metadata)
    assert refusal(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")


async def test_tampered_body_is_unauthenticated(net):
    keys, proxy, _ = net
    metadata = signed(keys, "miner", heartbeat(keys).SerializeToString(), receiver=keys.hotkey("proxy"))
    tampered = miner_gateway_pb2.HeartbeatRequest(miner_id=keys.hotkey("miner"), endpoint="10.0.0.1:1")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_heartbeat(proxy, tampered, metadata)
    assert refusal(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")


async def test_signature_for_another_receiver_is_unauthenticated(net):
    keys, proxy, _ = net
    request = heartbeat(keys)
    metadata = signed(keys, "miner", request.SerializeToString(), receiver=keys.hotkey("validator"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_heartbeat(proxy, request, metadata)
    assert refusal(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, "WRONG_RECEIVER")


async def test_stale_nonce_is_unauthenticated(net):
    keys, proxy, _ = net
    request = heartbeat(keys)
    old = time.time_ns() - 60 * 10**9
    metadata = signed(keys, "miner", request.SerializeToString(), receiver=keys.hotkey("proxy"), nonce_ns=old)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_heartbeat(proxy, request, metadata)
    assert refusal(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, "STALE_NONCE")


async def test_replayed_nonce_is_unauthenticated(net):
    keys, proxy, _ = net
    request = heartbeat(keys)
    metadata = signed(keys, "miner", request.SerializeToString(), receiver=keys.hotkey("proxy"))
    await call_heartbeat(proxy, request, metadata)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_heartbeat(proxy, request, metadata)
    assert refusal(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, "REPLAYED_NONCE")


async def test_unregistered_hotkey_is_permission_denied(net):
    keys, proxy, _ = net
    async with keys.channel("stranger", proxy, keys.hotkey("proxy")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await miner_gateway_pb2_grpc.MinerGatewayServiceStub(channel).Heartbeat(heartbeat(keys, "stranger"))
    assert refusal(caught.value) == (grpc.StatusCode.PERMISSION_DENIED, "HOTKEY_NOT_REGISTERED")


async def test_acting_as_another_miner_is_permission_denied(net):
    keys, proxy, _ = net
    async with keys.channel("validator", proxy, keys.hotkey("proxy")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await miner_gateway_pb2_grpc.MinerGatewayServiceStub(channel).Heartbeat(heartbeat(keys, "miner"))
    assert refusal(caught.value) == (grpc.StatusCode.PERMISSION_DENIED, "IDENTITY_MISMATCH")


async def test_validator_rpc_needs_a_permit_and_the_minimum_stake(net):
    keys, proxy, _ = net

    async def list_tasks(who: str) -> object:
        async with keys.channel(who, proxy, keys.hotkey("proxy")) as channel:
            stub = validator_gateway_pb2_grpc.ValidatorGatewayServiceStub(channel)
            return await stub.ListEvaluationTasks(
                validator_gateway_pb2.ListEvaluationTasksRequest(validator_id=keys.hotkey(who)), timeout=5)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_tasks("miner")
    assert refusal(caught.value) == (grpc.StatusCode.PERMISSION_DENIED, "VALIDATOR_PERMIT_REQUIRED")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_tasks("minnow")
    assert refusal(caught.value) == (grpc.StatusCode.PERMISSION_DENIED, "INSUFFICIENT_STAKE")
    reply = await list_tasks("validator")
    assert list(reply.tasks) == []


async def test_public_services_stay_open(net):
    _, proxy, _ = net
    async with grpc.aio.insecure_channel(proxy) as channel:
        await system_pb2_grpc.SystemServiceStub(channel).GetStatus(system_pb2.GetStatusRequest(), timeout=5)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_miner_takes_the_proxy_and_validators_only(net):
    keys, _, miner = net
    request = miner_pb2.GetCapabilitiesRequest()
    async with grpc.aio.insecure_channel(miner) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await miner_pb2_grpc.MinerServiceStub(channel).GetCapabilities(request, timeout=5)
    assert refusal(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING_SIGNATURE")
    for who, expected in (("proxy", None), ("validator", None),
                          ("miner", (grpc.StatusCode.PERMISSION_DENIED, "VALIDATOR_PERMIT_REQUIRED")),
                          ("minnow", (grpc.StatusCode.PERMISSION_DENIED, "INSUFFICIENT_STAKE")),
                          ("stranger", (grpc.StatusCode.PERMISSION_DENIED, "HOTKEY_NOT_REGISTERED"))):
        async with keys.channel(who, miner, keys.hotkey("miner")) as channel:
            stub = miner_pb2_grpc.MinerServiceStub(channel)
            if expected is None:
                reply = await stub.GetCapabilities(request, timeout=5)
                assert reply.capabilities.miner_id == keys.hotkey("miner")
            else:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.GetCapabilities(request, timeout=5)
                assert refusal(caught.value) == expected, who


async def test_capabilities_probe_may_be_unbound_but_work_may_not(net):
    keys, _, miner = net
    async with keys.channel("proxy", miner, None) as channel:
        stub = miner_pb2_grpc.MinerServiceStub(channel)
        caps = await stub.GetCapabilities(miner_pb2.GetCapabilitiesRequest(), timeout=5)
        assert caps.capabilities.miner_id == keys.hotkey("miner")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Transcribe(miner_pb2.TranscribeRequest(content=b"x"), timeout=5)
    assert refusal(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, "WRONG_RECEIVER")


def _stream(config_language: str) -> list[miner_pb2.MinerServiceStreamingTranscribeRequest]:
    config = streaming_pb2.StreamingRecognitionConfig(language_code=config_language)
    return [miner_pb2.MinerServiceStreamingTranscribeRequest(config=config),
            miner_pb2.MinerServiceStreamingTranscribeRequest(audio_content=b"\0\0" * 160)]


async def test_streams_are_signed_over_their_config(net):
    keys, _, miner = net
    # Signed by the proxy: auth passes, then this engine-less miner says it serves no transcription.
    async with keys.channel("proxy", miner, keys.hotkey("miner")) as channel:
        call = miner_pb2_grpc.MinerServiceStub(channel).StreamingTranscribe(iter(_stream("en")), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
    assert refusal(caught.value) == (grpc.StatusCode.UNIMPLEMENTED, "CAPABILITY_NOT_SERVED")
    # A signature over one config does not admit a stream that starts with another.
    path = "/violet.v1.MinerService/StreamingTranscribe"
    signed_config = _stream("en")[0].SerializeToString()
    metadata = signed(keys, "proxy", signed_config, receiver=keys.hotkey("miner"), path=path)
    async with grpc.aio.insecure_channel(miner) as channel:
        call = miner_pb2_grpc.MinerServiceStub(channel).StreamingTranscribe(iter(_stream("de")), metadata=metadata,
                                                                             timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
    assert refusal(caught.value) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")
