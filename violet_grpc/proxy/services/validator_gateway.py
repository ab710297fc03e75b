"""ValidatorGatewayService: organic tasks for validators to evaluate, and their verdicts.

Callers are registered validators with a permit (the auth interceptor checks the signature,
the permit, the stake, and that ``validator_id`` is the signing hotkey). A verdict is kept
once per (task, validator); after each new one the proxy recombines the recent verdicts on
the miners it names, weighted by the validators' stakes, into the routing scores the
dispatcher picks miners by.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from violet.v1 import validator_gateway_pb2, validator_gateway_pb2_grpc

from violet_grpc import errors
from violet_grpc.auth.server import current_caller
from violet_grpc.convert import task_to_proto, transcript_to_proto
from violet_grpc.evaluations import Evaluation, MinerScore, combine
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.proxy.orchestrator import utcnow
from violet_grpc.proxy.services.paging import page_size
from violet_grpc.rpc_errors import translate_errors
from violet_grpc.tasks import Task, TaskType
from violet_grpc.transcripts import transcript_from_json

log = logging.getLogger(__name__)

#: Tasks older than this are not offered for evaluation (a validator joining late skips history).
EVALUATION_WINDOW = timedelta(days=1)
#: Verdicts per miner that make up its consensus score.
RECENT_VERDICTS = 50


def _validator_id(value: str) -> str:
    if not value.strip():
        raise errors.InvalidArgument("validator_id is required", reason="MISSING_FIELD",
                                     metadata={"field": "validator_id"})
    return value.strip()


def _answers(task: Task) -> list[validator_gateway_pb2.MinerAnswer]:
    out = []
    for assignment in task.submitted():
        response = assignment.response or {}
        answer = validator_gateway_pb2.MinerAnswer(
            miner_id=assignment.miner_id, result_file_id=str(response.get("file_id", "")),
            processing_seconds=assignment.processing_seconds, agreement=assignment.agreement,
        )
        if "transcript" in response:
            answer.transcript.CopyFrom(transcript_to_proto(transcript_from_json(response["transcript"])))
        out.append(answer)
    return out


class ValidatorGatewayServicer(validator_gateway_pb2_grpc.ValidatorGatewayServiceServicer):
    """Serves organic work to validators and folds their verdicts into miner scores."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @translate_errors
    async def ListEvaluationTasks(
        self, request: validator_gateway_pb2.ListEvaluationTasksRequest, context: Any
    ) -> validator_gateway_pb2.ListEvaluationTasksResponse:
        validator_id = _validator_id(request.validator_id)
        size = page_size(request.page_size, default=20, maximum=100)
        try:
            kind = TaskType(request.type) if request.type else None
        except ValueError:
            raise errors.InvalidArgument(f"type {request.type} is not a known value", reason="INVALID_ENUM",
                                         metadata={"field": "type"}) from None
        page = await self.ctx.store.unevaluated(validator_id, type=kind, page_size=size, page_token=request.page_token,
                                                since=utcnow() - EVALUATION_WINDOW)
        return validator_gateway_pb2.ListEvaluationTasksResponse(
            tasks=[validator_gateway_pb2.EvaluationTask(task=task_to_proto(t), answers=_answers(t)) for t in page.tasks],
            next_page_token=page.next_page_token,
        )

    @translate_errors
    async def SubmitEvaluation(
        self, request: validator_gateway_pb2.SubmitEvaluationRequest, context: Any
    ) -> validator_gateway_pb2.SubmitEvaluationResponse:
        validator_id = _validator_id(request.validator_id)
        if not request.task_id.strip():
            raise errors.InvalidArgument("task_id is required", reason="MISSING_FIELD", metadata={"field": "task_id"})
        scores = tuple(MinerScore(e.miner_id.strip(), float(e.score), float(e.word_error_rate), float(e.latency_seconds))
                       for e in request.evaluations)
        if len({s.miner_id for s in scores}) != len(scores):
            raise errors.InvalidArgument("each miner is scored once per evaluation", reason="DUPLICATE_MINER",
                                         metadata={"field": "evaluations.miner_id"})
        caller = current_caller()
        # With auth off every validator counts the same; with auth on, its stake on the chain.
        stake = caller.stake if caller is not None else 1.0
        evaluation = Evaluation(task_id=request.task_id.strip(), validator_id=validator_id, validator_stake=stake,
                                scores=scores)
        fresh = await self.ctx.store.record_evaluation(evaluation, now=utcnow())
        if fresh:
            await self._rescore([s.miner_id for s in scores])
        return validator_gateway_pb2.SubmitEvaluationResponse(accepted=True)

    async def _rescore(self, miner_ids: list[str]) -> None:
        for miner_id in miner_ids:
            score = combine(miner_id, await self.ctx.store.miner_evaluations(miner_id, limit=RECENT_VERDICTS))
            if score is not None:
                self.ctx.registry.set_score(miner_id, score)
                log.info("miner %s: consensus score %.3f", miner_id, score)
