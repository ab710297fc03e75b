"""The client side of signed calls: ``grpc.aio`` interceptors that add btauth/1 metadata.

Every call is signed with the wallet's hotkey over ``POST <method path>``, the serialized
request (for client-streaming calls: the first message, the stream's config), a fresh
nanosecond nonce and the receiver's hotkey. The receiver may be a callable, for channels
opened before the server's hotkey is known (the proxy learns a configured miner's hotkey
from its first GetCapabilities answer).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
from bittensor import http_auth

from violet_grpc.auth.server import HTTP_METHOD

Receiver = str | None | Callable[[], str | None]


class _Signer:
    def __init__(self, wallet: Any, receiver: Receiver) -> None:
        self.wallet = wallet
        self.receiver = receiver

    def _receiver(self) -> str | None:
        value = self.receiver() if callable(self.receiver) else self.receiver
        return value or None

    def details(self, details: grpc.aio.ClientCallDetails, body: bytes) -> grpc.aio.ClientCallDetails:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        headers = http_auth.sign(self.wallet, method=HTTP_METHOD, path=method, body=body,
                                 receiver_ss58=self._receiver())
        metadata = grpc.aio.Metadata(*(tuple(details.metadata or ())))
        for key, value in headers.items():
            metadata.add(key.lower(), value)
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                           details.wait_for_ready)


def _body(message: Any) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString(deterministic=True)


async def _first_then_rest(request_iterator: Any) -> tuple[Any | None, AsyncIterator[Any]]:
    """The first message of a request stream, and an iterator over the whole stream."""
    if request_iterator is None:
        raise ValueError("signed client-streaming calls need a request iterator: the first message is signed")
    if hasattr(request_iterator, "__aiter__"):
        source = request_iterator.__aiter__()
        try:
            first = await anext(source)
        except StopAsyncIteration:
            first = None
    else:
        sync_source = iter(request_iterator)
        first = next(sync_source, None)

        async def _async() -> AsyncIterator[Any]:
            for item in sync_source:
                yield item

        source = _async()

    async def stream() -> AsyncIterator[Any]:
        if first is not None:
            yield first
        async for item in source:
            yield item

    return first, stream()


class _UnaryUnary(_Signer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self.details(client_call_details, _body(request)), request)


class _UnaryStream(_Signer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self.details(client_call_details, _body(request)), request)


class _StreamUnary(_Signer, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        first, stream = await _first_then_rest(request_iterator)
        body = _body(first) if first is not None else b""
        return await continuation(self.details(client_call_details, body), stream)


class _StreamStream(_Signer, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        first, stream = await _first_then_rest(request_iterator)
        body = _body(first) if first is not None else b""
        return await continuation(self.details(client_call_details, body), stream)


def signing_interceptors(wallet: Any, receiver: Receiver = None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that sign every kind of call with ``wallet``'s hotkey for ``receiver``."""
    return [cls(wallet, receiver) for cls in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]


def signed_channel(target: str, wallet: Any | None, receiver: Receiver = None, *,
                   options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """An insecure channel whose calls carry the wallet's signature (plain when ``wallet`` is None)."""
    interceptors = signing_interceptors(wallet, receiver) if wallet is not None else None
    return grpc.aio.insecure_channel(target, options=list(options), interceptors=interceptors)
