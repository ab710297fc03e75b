"""W&B telemetry: an end-to-end run leaves its metrics in an offline run directory, and
logging never blocks or breaks the caller."""
from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from google.api import httpbody_pb2
from violet.v1 import miner_pb2, miner_pb2_grpc, transcription_pb2, transcription_pb2_grpc

from tests.helpers import wer
from tests.servers import start_local_net, stop_local_net
from violet_grpc import telemetry
from violet_grpc.storage import task_store_from_uri
from violet_grpc.telemetry import Telemetry, TelemetrySettings, find_offline_runs, log_scores, read_offline_history

COMPLETED = 5


@pytest.fixture
def offline_telemetry(tmp_path: Path):
    """Telemetry on, offline, writing under tmp_path, installed as the process's."""
    t = Telemetry(TelemetrySettings(enabled=True, wandb_mode="offline", wandb_dir=str(tmp_path / "state"),
                                    flush_seconds=0.5), run_name="e2e")
    previous = telemetry.install(t)
    yield t
    t.close()
    telemetry.install(previous) if previous is not None else telemetry.shutdown()


def last_values(rows: list[dict]) -> dict:
    """The latest value of every metric over all logged rows."""
    merged: dict = {}
    for row in rows:
        merged.update(row)
    return merged


async def test_end_to_end_run_leaves_metrics_in_offline_run_dir(tmp_path, engines, jfk_flac, jfk_text, offline_telemetry):
    net = await start_local_net(tmp_path / "net", engines)
    try:
        async with net.channel() as channel:
            reply = await transcription_pb2_grpc.TranscriptionServiceStub(channel).CreateTranscription(
                transcription_pb2.CreateTranscriptionRequest(
                    audio=httpbody_pb2.HttpBody(content_type="audio/flac", data=jfk_flac.read_bytes()),
                    source_language="en", wait_for_completion=True,
                ))
        assert reply.task.state == COMPLETED
        assert wer(jfk_text, reply.task.transcript.text) <= 0.10
        # A job the miner refuses counts as a miner error.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{net.miners[0][1]}") as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await miner_pb2_grpc.MinerServiceStub(channel).Transcribe(miner_pb2.TranscribeRequest(content=b""))
        log_scores({"miner-0": 0.8, "miner-9": 0.1}, {"miner-0": 0.9, "miner-9": 0.1})
    finally:
        await stop_local_net(net)
    offline_telemetry.close()

    runs = find_offline_runs(tmp_path / "state")
    assert runs == [offline_telemetry.run_dir], runs
    rows = read_offline_history(runs[0])
    metrics = last_values(rows)
    assert "proxy/tasks_created_total" in metrics, (
        sorted(metrics), offline_telemetry.logged_steps, offline_telemetry.dropped, offline_telemetry.last_error,
        sorted((p.name, p.stat().st_size) for p in runs[0].rglob("*") if p.is_file()),
        (runs[0] / "logs" / "debug-internal.log").read_text()[-3000:],
    )
    # proxy: rates, processing times, error rates, miner scores
    assert metrics["proxy/tasks_created_total"] == 1
    assert metrics["proxy/tasks_completed_total"] == 1
    assert metrics["proxy/error_rate"] == 0
    assert 0 < metrics["proxy/task_seconds_mean"] < 60
    assert metrics["proxy/answers_total"] == 1
    assert metrics["proxy/miner_agreement/miner-0_mean"] == 1.0
    assert metrics["proxy/miner_score/miner-0"] == 1.0
    assert max(row.get("proxy/miners_online", 0) for row in rows) == 1
    assert "proxy/tasks_created_per_min" in metrics
    # miner: job counts, times, errors
    assert metrics["miner/Transcribe/jobs_total"] == 2
    assert metrics["miner/errors_total"] == 1
    assert 0 < metrics["miner/Transcribe/job_seconds_max"] < 60
    # validator: scores and weights
    assert metrics["validator/score/miner-0"] == 0.8
    assert metrics["validator/weight/miner-9"] == 0.1
    assert metrics["validator/weights_sum"] == pytest.approx(1.0)


def test_recording_never_blocks_and_overflow_is_dropped(tmp_path, monkeypatch):
    gate_opened = []

    def slow_start(self):  # W&B stuck for a while: the queue fills up behind it
        time.sleep(1.0)
        gate_opened.append(True)
        raise RuntimeError("W&B is unreachable")

    monkeypatch.setattr(Telemetry, "_start_run", slow_start)
    t = Telemetry(TelemetrySettings(wandb_dir=str(tmp_path), flush_seconds=0.01, queue_size=10))
    t.count("x")
    time.sleep(0.1)  # the thread is now inside the stuck start
    started = time.perf_counter()
    for _ in range(10_000):
        t.count("proxy/tasks_created")
    assert time.perf_counter() - started < 1.0
    assert t.dropped >= 10_000 - 10
    t.close()  # the failed start was swallowed; closing still works
    assert gate_opened and t.logged_steps == 0
    assert t.last_error == "RuntimeError: W&B is unreachable"


async def test_telemetry_off_changes_nothing(tmp_path):
    settings = TelemetrySettings.from_env({"VIOLET_TELEMETRY": "off"})
    assert not settings.active
    t = Telemetry(settings)
    store = task_store_from_uri(f"sqlite:///{tmp_path / 'tasks.db'}")
    assert telemetry.instrument_proxy(store, registry=None, telemetry=t) is store
    assert telemetry.miner_interceptors(t) == []
    t.count("anything")
    t.close()
    await store.close()
    assert not find_offline_runs(tmp_path)


def test_settings_come_from_the_documented_environment():
    s = TelemetrySettings.from_env({"WANDB_MODE": "online", "WANDB_PROJECT": "p", "WANDB_ENTITY": "e",
                                    "WANDB_DIR": "/x", "VIOLET_TELEMETRY": "on"})
    assert (s.wandb_mode, s.wandb_project, s.wandb_entity, s.wandb_dir, s.active) == ("online", "p", "e", "/x", True)
    assert TelemetrySettings.from_env({}).wandb_mode == "offline"
    assert TelemetrySettings.from_env({"WANDB_MODE": "bogus"}).wandb_mode == "offline"
    assert not TelemetrySettings.from_env({"WANDB_MODE": "disabled"}).active
