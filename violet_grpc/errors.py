"""Domain errors shared by every layer.

Engines, storage and domain code raise these; the gRPC edge turns each into a canonical
status code with a ``google.rpc.ErrorInfo`` (see ``violet_grpc.rpc_errors``). Clients turn
statuses back into the same classes, so one ``except VioletError`` covers the whole API.
"""
from __future__ import annotations

from collections.abc import Mapping

DOMAIN = "violet.network"


class VioletError(Exception):
    """Root of every error Violet raises on purpose.

    Args:
        message: What went wrong, written for the person who sent the request.
        reason: A stable UPPER_SNAKE identifier clients can switch on.
        metadata: Dynamic values (field names, limits, ids) that explain the error.
    """

    #: Name of the canonical gRPC status code (``grpc.StatusCode`` member) for this class.
    code_name: str = "INTERNAL"
    default_reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = {k: str(v) for k, v in (metadata or {}).items()}


class InvalidArgument(VioletError):
    """The request is malformed or names something unsupported; retrying will not help."""

    code_name = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"


class NotFound(VioletError):
    """The named resource does not exist."""

    code_name = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(VioletError):
    """The resource being created exists already."""

    code_name = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(VioletError):
    """The system is not in a state where the request can be carried out."""

    code_name = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class ResourceExhausted(VioletError):
    """A size, rate or capacity limit was hit."""

    code_name = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"


class PermissionDenied(VioletError):
    """The caller is known but may not do this."""

    code_name = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(VioletError):
    """The caller could not be identified (missing or bad signature)."""

    code_name = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class Unavailable(VioletError):
    """No backend (miner, store) can serve right now; retrying later may help."""

    code_name = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"


class Unimplemented(VioletError):
    """The method exists in the contract but this server does not provide it (yet)."""

    code_name = "UNIMPLEMENTED"
    default_reason = "UNIMPLEMENTED"


class DeadlineExceeded(VioletError):
    """The work did not finish within its deadline."""

    code_name = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"


class Internal(VioletError):
    """A bug or broken invariant inside Violet."""
