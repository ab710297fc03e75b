"""Organic evaluation: judge real users' tasks the proxy completed, and report the verdicts.

For transcription the validator transcribes the task's input itself and scores each miner's
transcript by WER against that; for speech it transcribes each miner's audio and compares it
with the text the user asked for. Where it has no reference of its own (documents, or no
ASR loaded) it falls back to the agreement the proxy measured between the miners' answers,
which is consensus, not a miner's claim. Processing times miners report are never used.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc
from violet.v1 import files_pb2, files_pb2_grpc, resources_pb2, validator_gateway_pb2, validator_gateway_pb2_grpc

from violet_grpc.validator import scoring

log = logging.getLogger(__name__)

_TRANSCRIPTS = (resources_pb2.TASK_TYPE_TRANSCRIPTION, resources_pb2.TASK_TYPE_VIDEO_TRANSCRIPTION,
                resources_pb2.TASK_TYPE_STREAMING_TRANSCRIPTION)


class OrganicEvaluator:
    """Evaluates the proxy's completed tasks for one validator.

    Args:
        channel: A channel to the proxy, signed for the proxy's hotkey.
        validator_id: This validator's hotkey.
        transcribe_audio: The validator's own ASR (audio bytes → (text, duration)); None
            falls back to agreement.
    """

    def __init__(self, channel: grpc.aio.Channel, validator_id: str,
                 transcribe_audio: Callable[[bytes], tuple[str, float]] | None = None) -> None:
        self.gateway = validator_gateway_pb2_grpc.ValidatorGatewayServiceStub(channel)
        self.files = files_pb2_grpc.FilesServiceStub(channel)
        self.validator_id = validator_id
        self.transcribe_audio = transcribe_audio

    async def run_once(self, limit: int = 20) -> int:
        """Evaluates up to ``limit`` tasks; returns how many verdicts were submitted."""
        reply = await self.gateway.ListEvaluationTasks(
            validator_gateway_pb2.ListEvaluationTasksRequest(validator_id=self.validator_id, page_size=limit), timeout=30)
        done = 0
        for item in reply.tasks:
            evaluations = await self.evaluate(item)
            await self.gateway.SubmitEvaluation(validator_gateway_pb2.SubmitEvaluationRequest(
                validator_id=self.validator_id, task_id=item.task.task_id, evaluations=evaluations), timeout=30)
            done += 1
        return done

    async def evaluate(self, item: validator_gateway_pb2.EvaluationTask) -> list[validator_gateway_pb2.MinerEvaluation]:
        """One score per answer of a task."""
        task = item.task
        reference: str | None = None
        if self.transcribe_audio is not None and task.type in _TRANSCRIPTS and task.input_file_id:
            reference = await self._hear(task.input_file_id)
        out = []
        for answer in item.answers:
            if reference is not None:
                wer = 1.0 - scoring.quality(reference, answer.transcript.text)
            elif self.transcribe_audio is not None and task.type == resources_pb2.TASK_TYPE_SPEECH_SYNTHESIS \
                    and answer.result_file_id:
                heard = await self._hear(answer.result_file_id)
                wer = 1.0 - scoring.quality(task.text, heard or "")
            else:
                out.append(validator_gateway_pb2.MinerEvaluation(miner_id=answer.miner_id,
                                                                 score=max(0.0, min(1.0, answer.agreement))))
                continue
            out.append(validator_gateway_pb2.MinerEvaluation(miner_id=answer.miner_id, score=1.0 - wer,
                                                             word_error_rate=wer))
        return out

    async def _hear(self, file_id: str) -> str | None:
        try:
            reply = await self.files.GetFile(files_pb2.GetFileRequest(file_id=file_id), timeout=30)
            listen: Any = self.transcribe_audio
            text, _ = await asyncio.to_thread(listen, reply.content.data)
            return text
        except Exception as exc:  # a file that cannot be fetched or decoded leaves no reference
            log.info("no reference for file %s: %s", file_id, exc)
            return None
