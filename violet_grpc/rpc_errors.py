"""Turning domain errors into gRPC statuses and back.

Servers raise :class:`~violet_grpc.errors.VioletError`; :func:`abort_with` sends it as a
canonical code plus a ``google.rpc.Status`` carrying one ``ErrorInfo`` (reason, domain,
metadata) in the ``grpc-status-details-bin`` trailer, which Envoy also understands.
Clients call :func:`from_rpc_error` to get the same typed exception back.
"""
from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from violet_grpc import errors

log = logging.getLogger(__name__)

_CLASSES: dict[str, type[errors.VioletError]] = {
    cls.code_name: cls
    for cls in (
        errors.InvalidArgument,
        errors.NotFound,
        errors.AlreadyExists,
        errors.FailedPrecondition,
        errors.ResourceExhausted,
        errors.PermissionDenied,
        errors.Unauthenticated,
        errors.Unavailable,
        errors.Unimplemented,
        errors.DeadlineExceeded,
        errors.Internal,
    )
}


#: Longest message and metadata value sent back. Errors quote what the caller sent (an id,
#: a field); unclipped, a huge value makes the trailers exceed the client's metadata limit
#: and the client sees RESOURCE_EXHAUSTED instead of the real error.
_MAX_MESSAGE_CHARS = 1024
_MAX_METADATA_CHARS = 256


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_status(error: errors.VioletError) -> grpc.Status:
    """Builds the rich status (code, message, ErrorInfo detail) for a domain error."""
    metadata = {_clip(k, _MAX_METADATA_CHARS): _clip(v, _MAX_METADATA_CHARS) for k, v in error.metadata.items()}
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=errors.DOMAIN, metadata=metadata
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(
        code=getattr(code_pb2, error.code_name),
        message=_clip(error.message, _MAX_MESSAGE_CHARS),
        details=[detail],
    )
    return rpc_status.to_status(status)


async def abort_with(context: grpc.aio.ServicerContext, error: errors.VioletError) -> None:
    """Ends the call with the error's status; never returns."""
    await context.abort_with_status(to_status(error))


def from_rpc_error(error: grpc.RpcError) -> errors.VioletError:
    """Rebuilds the typed domain error a server sent, keeping reason and metadata."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    cls = _CLASSES.get(code.name, errors.VioletError)
    reason, metadata = code.name, {}
    status = rpc_status.from_call(error) if hasattr(error, "trailing_metadata") else None
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reason, metadata = info.reason, dict(info.metadata)
    result = cls(message or code.name, reason=reason, metadata=metadata)
    result.code_name = code.name
    return result


F = TypeVar("F", bound=Callable[..., Any])


def translate_errors(method: F) -> F:
    """Decorates a servicer method so domain errors become statuses and bugs become INTERNAL.

    Works for unary methods and for server-streaming async generators alike, so servicers
    stay free of try/except boilerplate.
    """
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for item in method(self, request, context):
                    yield item
            except errors.VioletError as exc:
                await abort_with(context, exc)
            except (grpc.aio.AbortError, GeneratorExit):
                raise
            except Exception:
                log.exception("unhandled error in %s", method.__qualname__)
                await abort_with(context, errors.Internal("internal error; see server log"))

        return stream_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary_wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except errors.VioletError as exc:
            await abort_with(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unhandled error in %s", method.__qualname__)
            await abort_with(context, errors.Internal("internal error; see server log"))

    return unary_wrapper  # type: ignore[return-value]


async def call_or_raise(awaitable: Awaitable[Any]) -> Any:
    """Awaits a client call, turning its ``grpc.RpcError`` into a typed domain error."""
    try:
        return await awaitable
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from exc
