"""The contract as a client sees it: only generated stubs (and grpcurl) against real servers."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from violet.v1 import (
    miner_pb2,
    miner_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    validator_gateway_pb2,
    validator_gateway_pb2_grpc,
)

from violet_grpc import errors
from violet_grpc.rpc_errors import from_rpc_error
from violet_grpc.proxy.server import SERVICE_NAMES


async def test_health_reports_serving_for_every_service(local_net):
    async with local_net.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ["", *SERVICE_NAMES]:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_status_shows_the_miner_and_backends(local_net):
    async with local_net.channel() as channel:
        status = await system_pb2_grpc.SystemServiceStub(channel).GetStatus(system_pb2.GetStatusRequest())
    assert status.miners_online == 1
    assert status.miners[0].miner_id == "miner-0"
    assert status.miners[0].max_slots == 2
    assert status.task_store_backend == "sqlite"
    assert status.file_store_backend == "local"
    assert status.version


async def test_miner_capabilities_name_model_languages_and_voices(local_net):
    _, port, _ = local_net.miners[0]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        caps = (await miner_pb2_grpc.MinerServiceStub(channel).GetCapabilities(miner_pb2.GetCapabilitiesRequest())).capabilities
    assert caps.asr_model == "tiny.en"
    assert list(caps.asr_languages) == ["en"]
    assert caps.device == "cpu"
    assert caps.free_slots == caps.max_slots == 2
    assert any(v.voice_id == "en_US-joe-medium" for v in caps.voices)


async def test_validator_gateway_lists_evaluation_work_and_checks_input(local_net):
    # local_net runs with auth off; signed validator calls are tested in tests/auth.
    async with local_net.channel() as channel:
        stub = validator_gateway_pb2_grpc.ValidatorGatewayServiceStub(channel)
        reply = await stub.ListEvaluationTasks(validator_gateway_pb2.ListEvaluationTasksRequest(validator_id="v"))
        assert list(reply.tasks) == [] and reply.next_page_token == ""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListEvaluationTasks(validator_gateway_pb2.ListEvaluationTasksRequest(validator_id=" "))
    error = from_rpc_error(caught.value)
    assert isinstance(error, errors.InvalidArgument)
    assert error.reason == "MISSING_FIELD"


def _grpcurl() -> str | None:
    """grpcurl from the venv (next to this Python) or from PATH."""
    beside = Path(sys.executable).parent / "grpcurl"
    return str(beside) if beside.exists() else shutil.which("grpcurl")


@pytest.mark.skipif(_grpcurl() is None, reason="grpcurl is installed with the dev extra")
async def test_grpcurl_lists_services_and_checks_health(local_net):
    address = local_net.proxy_address
    listing = await _run([_grpcurl(), "-plaintext", address, "list"])
    for service in SERVICE_NAMES:
        assert service in listing
    assert "grpc.health.v1.Health" in listing
    health = await _run([_grpcurl(), "-plaintext", address, "grpc.health.v1.Health/Check"])
    assert '"status": "SERVING"' in health
    described = await _run([_grpcurl(), "-plaintext", address, "describe", "violet.v1.TranscriptionService"])
    assert "StreamingTranscribe" in described


async def _run(argv: list[str]) -> str:
    import asyncio

    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()
