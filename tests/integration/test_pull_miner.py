"""A pull-mode miner (polling REST through Envoy, signing with its hotkey) completes tasks."""
from __future__ import annotations

import asyncio

import pytest
import requests

from tests.helpers import wer
from violet_grpc import errors
from tests.servers import running_stack
from violet_grpc.audio.decode import decode_file
from violet_grpc.auth.wallets import coldkey_address, create_wallet, load_wallet
from violet_grpc.chain import LocalChain
from violet_grpc.miner.engines.asr import TranscribeOptions
from violet_grpc.miner.pull_worker import PullWorker
from violet_grpc.stack import STACK_WALLETS


@pytest.fixture(scope="module")
def asr_only_stack(tmp_path_factory):
    """A stack whose push miner only transcribes, so speech work can only go to a pull miner."""
    with running_stack(tmp_path_factory.mktemp("pull-home"), engines="asr", validator=False) as config:
        yield config


def _register(stack, name: str):
    wallet = create_wallet(name, "default", stack.home / "wallets")
    LocalChain(stack.home / "chain.json", 49).register(wallet.hotkey.ss58_address, coldkey=coldkey_address(wallet))
    return wallet


async def test_signed_pull_miner_synthesises_speech_through_envoy(asr_only_stack, engines):
    stack = asr_only_stack
    base = f"http://127.0.0.1:{stack.rest_port}"
    wallet = _register(stack, "pull-miner")
    miner_id = wallet.hotkey.ss58_address
    proxy_hotkey = load_wallet(STACK_WALLETS["proxy"], "default", stack.home / "wallets").hotkey.ss58_address

    def capabilities():
        from violet.v1 import miner_pb2, resources_pb2

        voices = [miner_pb2.VoiceInfo(voice_id=v.voice_id, language=v.language, sample_rate_hertz=v.sample_rate,
                                      engine=v.engine) for v in engines.tts.voices()]
        return miner_pb2.MinerCapabilities(miner_id=miner_id, task_types=[resources_pb2.TASK_TYPE_SPEECH_SYNTHESIS],
                                           max_slots=2, free_slots=2, voices=voices)

    worker = PullWorker(base, miner_id, engines, capabilities, wallet=wallet, proxy_hotkey=proxy_hotkey)
    # Signed heartbeat over REST; a hotkey registered a moment ago shows up within a metagraph refresh.
    for _ in range(20):
        try:
            await asyncio.to_thread(worker.poll_once)
            break
        except errors.PermissionDenied:
            await asyncio.sleep(0.5)
    text = "The pull miner reads this sentence aloud, and then the proxy stores the audio for the user."
    created = requests.post(f"{base}/api/v1/tts", json={"text": text}, timeout=60)
    assert created.status_code == 200, created.text
    task_id = created.json()["task"]["task_id"]
    for _ in range(40):
        await asyncio.to_thread(worker.poll_once)
        task = requests.get(f"{base}/api/v1/tasks/{task_id}", timeout=30).json()["task"]
        if task["state"] in ("TASK_STATE_COMPLETED", "TASK_STATE_FAILED"):
            break
        await asyncio.sleep(0.3)
    assert task["state"] == "TASK_STATE_COMPLETED", task
    [answer] = [a for a in task["assignments"] if a["state"] == "ASSIGNMENT_STATE_SUBMITTED"]
    assert answer["miner_id"] == miner_id
    audio = requests.get(f"{base}/api/v1/tts/audio/{task['result_file_id']}", timeout=30)
    assert audio.headers["content-type"] == "audio/wav"
    heard = engines.asr.transcribe(decode_file(audio.content).samples, TranscribeOptions(language="en"))
    assert wer(text, heard.text) <= 0.2, heard.text


async def test_unsigned_and_foreign_rest_miner_calls_are_refused(asr_only_stack):
    base = f"http://127.0.0.1:{asr_only_stack.rest_port}"
    unsigned = requests.post(f"{base}/api/v1/miner/heartbeat", json={"miner_id": "someone"}, timeout=30)
    assert unsigned.status_code == 401
    assert unsigned.json()["details"][0]["reason"] == "MISSING_SIGNATURE"
