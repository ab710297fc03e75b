"""ValidatorGatewayService: organic tasks for validators to evaluate.

Evaluation needs validator identities (hotkey signatures and permits), which arrive with
the chain integration; until then both methods say so plainly instead of pretending.
"""
from __future__ import annotations

from typing import Any

from violet.v1 import validator_gateway_pb2, validator_gateway_pb2_grpc

from violet_grpc import errors
from violet_grpc.rpc_errors import translate_errors

_NOT_YET = (
    "validator evaluation needs signed validator identities, which this proxy does not verify yet; "
    "this method is not served"
)


class ValidatorGatewayServicer(validator_gateway_pb2_grpc.ValidatorGatewayServiceServicer):
    """Refuses evaluation calls with a clear UNIMPLEMENTED until validators can be verified."""

    @translate_errors
    async def ListEvaluationTasks(self, request: validator_gateway_pb2.ListEvaluationTasksRequest, context: Any) -> Any:
        raise errors.Unimplemented(_NOT_YET, reason="VALIDATOR_GATEWAY_UNAVAILABLE")

    @translate_errors
    async def SubmitEvaluation(self, request: validator_gateway_pb2.SubmitEvaluationRequest, context: Any) -> Any:
        raise errors.Unimplemented(_NOT_YET, reason="VALIDATOR_GATEWAY_UNAVAILABLE")
