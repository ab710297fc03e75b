"""The server side of signed calls: a ``grpc.aio`` interceptor that verifies btauth/1 metadata.

For each protected method (see :mod:`violet_grpc.auth.policy`) the interceptor swaps the
method handler for one that receives the request's raw bytes, so the body hash is taken
over exactly what arrived, before any parsing. Then, in this order:

1. ``bittensor.http_auth.verify``: header shape, receiver (this server's hotkey),
   freshness of the nanosecond nonce, the sr25519 signature over
   ``POST <method path> sha256(body) nonce sender receiver``, and replay (the nonce store,
   written only after the signature verified). Failures are UNAUTHENTICATED.
2. Membership: the hotkey must be in the metagraph (a dict lookup that answers None for
   anyone else) before anything is looked up by its uid or stake. Trusted hotkeys (the
   configured proxy) pass without being registered. Failures are PERMISSION_DENIED.
3. The role: validator permit and minimum stake for validator methods.
4. Identity: a request's ``miner_id`` / ``validator_id`` must equal the signing hotkey.

The authenticated caller is available to servicers through :func:`current_caller`.

What is signed for streams: for a client-streaming method the body is the serialized
*first* message (a stream's config), so the signature binds the method, the receiver, the
nonce and the config; later audio chunks are not signed one by one (they ride the same
HTTP/2 stream; against a man-in-the-middle only TLS helps, as for any plaintext channel).
"""
from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from bittensor import http_auth

from violet_grpc import errors
from violet_grpc.auth.nonces import MemoryNonceStore, NonceStore
from violet_grpc.auth.policy import MethodRule, Role
from violet_grpc.chain.base import Neuron
from violet_grpc.chain.cache import MetagraphCache
from violet_grpc.rpc_errors import to_status

log = logging.getLogger(__name__)

#: The HTTP method of every gRPC call, signed as btauth/1's ``method``.
HTTP_METHOD = "POST"


@dataclass(frozen=True)
class Caller:
    """An authenticated and authorised caller.

    Attributes:
        hotkey: The signing hotkey (SS58).
        neuron: Its registration, or None for a trusted hotkey that is not registered.
        trusted: Whether it is one of the configured trusted hotkeys (the proxy).
    """

    hotkey: str
    neuron: Neuron | None
    trusted: bool = False

    @property
    def stake(self) -> float:
        """The caller's stake (0 when not registered)."""
        return self.neuron.stake if self.neuron else 0.0


_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("violet_caller", default=None)


def current_caller() -> Caller | None:
    """The authenticated caller of the RPC being served (None when auth is off or the method is public)."""
    return _CALLER.get()


_AUTH_ERRORS: dict[type[Exception], str] = {
    http_auth.WrongReceiver: "WRONG_RECEIVER",
    http_auth.StaleRequest: "STALE_NONCE",
    http_auth.ReplayedRequest: "REPLAYED_NONCE",
    http_auth.BadSignature: "BAD_SIGNATURE",
    http_auth.MalformedAuth: "MALFORMED_SIGNATURE",
}


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Verifies signed metadata on protected methods; public methods pass untouched.

    Args:
        self_hotkey: This server's hotkey; signatures must name it as the receiver.
        metagraph: Where registrations, permits and stakes come from.
        rules: Protected methods (path → rule).
        trusted_hotkeys: Hotkeys allowed where the role says PROXY_OR_VALIDATOR without a
            registration (the proxy's).
        min_validator_stake: Stake a validator needs for validator methods.
        nonce_store: Replay memory; a per-process one by default.
        max_age: Seconds a signature stays fresh.
        allowed_skew: Seconds a caller's clock may run ahead.
    """

    def __init__(
        self,
        self_hotkey: str,
        metagraph: MetagraphCache,
        rules: Mapping[str, MethodRule],
        *,
        trusted_hotkeys: Iterable[str] = (),
        min_validator_stake: float = 0.0,
        nonce_store: NonceStore | None = None,
        max_age: float = http_auth.DEFAULT_MAX_AGE,
        allowed_skew: float = http_auth.DEFAULT_ALLOWED_SKEW,
    ) -> None:
        self.self_hotkey = self_hotkey
        self.metagraph = metagraph
        self.rules = dict(rules)
        self.trusted = frozenset(h for h in trusted_hotkeys if h)
        self.min_validator_stake = float(min_validator_stake)
        self.max_age = max_age
        self.allowed_skew = allowed_skew
        self.nonce_store = nonce_store or MemoryNonceStore(retention=max(60.0, 2 * (max_age + allowed_skew)))

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        rule = self.rules.get(method)
        if handler is None or rule is None:
            return handler
        metadata = _headers(handler_call_details.invocation_metadata)
        return self._wrap(handler, method, rule, metadata)

    # -- checks ---------------------------------------------------------------------------

    async def authenticate(self, method: str, rule: MethodRule, headers: Mapping[str, str], body: bytes) -> Caller:
        """Runs every check; returns the caller or raises Unauthenticated / PermissionDenied."""
        if http_auth.HEADER_SIGNATURE.lower() not in headers:
            raise errors.Unauthenticated(
                f"{method} needs a hotkey signature (btauth/1 metadata: x-bittensor-hotkey, -nonce, "
                "-receiver, -signature)", reason="MISSING_SIGNATURE", metadata={"method": method})
        try:
            verified = http_auth.verify(
                headers, body, method=HTTP_METHOD, path=method, self_hotkey_ss58=self.self_hotkey,
                max_age=self.max_age, allowed_skew=self.allowed_skew, nonce_store=self.nonce_store,
                require_receiver=not rule.receiver_optional,
            )
        except http_auth.AuthError as exc:
            reason = next((r for cls, r in _AUTH_ERRORS.items() if isinstance(exc, cls)), "BAD_SIGNATURE")
            raise errors.Unauthenticated(f"signature refused: {exc}", reason=reason,
                                         metadata={"method": method}) from None
        hotkey = verified.hotkey_ss58
        trusted = hotkey in self.trusted
        neuron = await self.metagraph.neuron(hotkey)  # membership first: None for anyone unregistered
        if neuron is None and not (trusted and rule.role is Role.PROXY_OR_VALIDATOR):
            raise errors.PermissionDenied(
                f"hotkey {hotkey} is not registered on netuid {self.metagraph.chain.netuid}",
                reason="HOTKEY_NOT_REGISTERED", metadata={"hotkey": hotkey, "method": method})
        if rule.role is Role.VALIDATOR or (rule.role is Role.PROXY_OR_VALIDATOR and not trusted):
            self._require_validator(neuron, hotkey, method)
        return Caller(hotkey=hotkey, neuron=neuron, trusted=trusted)

    async def _authenticate_either(self, method: str, rule: MethodRule, headers: Mapping[str, str], raw: bytes,
                                   request: Any) -> Caller:
        """Verifies over the bytes as received, else over the message's canonical bytes.

        REST callers reach us through Envoy, which re-encodes their JSON (repeated enums
        unpacked, query fields first), so they sign the deterministic serialization of the
        request message and we verify over the same canonical form of what we parsed. The
        signature then covers exactly the message the server acts on. A failed first try
        stores no nonce (the nonce is recorded only after a signature verifies).
        """
        try:
            return await self.authenticate(method, rule, headers, raw)
        except errors.Unauthenticated as exc:
            canonical = request.SerializeToString(deterministic=True) if hasattr(request, "SerializeToString") else raw
            if exc.reason != "BAD_SIGNATURE" or canonical == raw:
                raise
            return await self.authenticate(method, rule, headers, canonical)

    def _require_validator(self, neuron: Neuron | None, hotkey: str, method: str) -> None:
        if neuron is None or not neuron.validator_permit:
            raise errors.PermissionDenied(f"{method} is for validators: hotkey {hotkey} has no validator permit",
                                          reason="VALIDATOR_PERMIT_REQUIRED", metadata={"hotkey": hotkey, "method": method})
        if neuron.stake < self.min_validator_stake:
            raise errors.PermissionDenied(
                f"hotkey {hotkey} has {neuron.stake:g} stake; {method} needs at least {self.min_validator_stake:g}",
                reason="INSUFFICIENT_STAKE",
                metadata={"hotkey": hotkey, "stake": f"{neuron.stake:g}", "min_stake": f"{self.min_validator_stake:g}"})

    @staticmethod
    def check_identity(rule: MethodRule, request: Any, caller: Caller) -> None:
        """The request's identity field must name the signing hotkey."""
        if not rule.identity_field:
            return
        claimed = str(getattr(request, rule.identity_field, "")).strip()
        if claimed != caller.hotkey:
            raise errors.PermissionDenied(
                f"{rule.identity_field} {claimed!r} is not the signing hotkey {caller.hotkey}",
                reason="IDENTITY_MISMATCH", metadata={"field": rule.identity_field, "hotkey": caller.hotkey})

    # -- handler wrapping ---------------------------------------------------------------------

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str, rule: MethodRule,
              headers: Mapping[str, str]) -> grpc.RpcMethodHandler:
        parse = handler.request_deserializer or (lambda raw: raw)
        serialize = handler.response_serializer

        async def admit(raw: bytes, context: Any) -> tuple[Any, contextvars.Token[Caller | None]] | None:
            try:
                try:
                    request = parse(raw)
                except Exception as exc:  # protobuf's DecodeError and friends
                    raise errors.InvalidArgument("the request is not a valid message", reason="MALFORMED_REQUEST",
                                                 metadata={"method": method}) from exc
                caller = await self._authenticate_either(method, rule, headers, raw, request)
                self.check_identity(rule, request, caller)
            except errors.VioletError as exc:
                log.info("refused %s: %s (%s)", method, exc.reason, exc.message)
                await context.abort_with_status(to_status(exc))
                return None
            return request, _CALLER.set(caller)

        if handler.unary_unary:
            async def unary_unary(raw: bytes, context: Any) -> Any:
                admitted = await admit(raw, context)
                request, token = admitted  # type: ignore[misc]
                try:
                    return await handler.unary_unary(request, context)
                finally:
                    _CALLER.reset(token)

            return grpc.unary_unary_rpc_method_handler(unary_unary, response_serializer=serialize)

        if handler.unary_stream:
            async def unary_stream(raw: bytes, context: Any) -> AsyncIterator[Any]:
                admitted = await admit(raw, context)
                request, token = admitted  # type: ignore[misc]
                try:
                    async for item in _responses(handler.unary_stream(request, context)):
                        yield item
                finally:
                    _CALLER.reset(token)

            return grpc.unary_stream_rpc_method_handler(unary_stream, response_serializer=serialize)

        stream_rule = MethodRule(rule.role, "", rule.receiver_optional)  # no identity field on streams

        async def open_stream(raw_iterator: AsyncIterator[bytes], context: Any) -> tuple[AsyncIterator[Any], Any]:
            try:
                first: bytes | None = await anext(raw_iterator)
            except StopAsyncIteration:
                first = None
            admitted = await admit(first or b"", context) if first is not None else await _admit_empty(context)
            _, token = admitted  # type: ignore[misc]

            async def requests() -> AsyncIterator[Any]:
                if first is not None:
                    yield parse(first)
                async for raw in raw_iterator:
                    yield parse(raw)

            return requests(), token

        async def _admit_empty(context: Any) -> Any:
            # An empty stream signs an empty body; there is no first message to parse.
            try:
                caller = await self.authenticate(method, stream_rule, headers, b"")
            except errors.VioletError as exc:
                await context.abort_with_status(to_status(exc))
                return None
            return None, _CALLER.set(caller)

        if handler.stream_unary:
            async def stream_unary(raw_iterator: AsyncIterator[bytes], context: Any) -> Any:
                requests, token = await open_stream(raw_iterator, context)
                try:
                    return await handler.stream_unary(requests, context)
                finally:
                    _CALLER.reset(token)

            return grpc.stream_unary_rpc_method_handler(stream_unary, response_serializer=serialize)

        async def stream_stream(raw_iterator: AsyncIterator[bytes], context: Any) -> AsyncIterator[Any]:
            requests, token = await open_stream(raw_iterator, context)
            try:
                async for item in _responses(handler.stream_stream(requests, context)):
                    yield item
            finally:
                _CALLER.reset(token)

        return grpc.stream_stream_rpc_method_handler(stream_stream, response_serializer=serialize)


async def _responses(result: Any) -> AsyncIterator[Any]:
    """Items of a streaming handler, whether it is an async generator or writes to its context."""
    if hasattr(result, "__aiter__"):
        async for item in result:
            yield item
    elif hasattr(result, "__await__"):
        await result
    else:
        for item in result:
            yield item


def _headers(metadata: Iterable[Any] | None) -> dict[str, str]:
    """Invocation metadata as a dict of text values (binary ``-bin`` entries are skipped)."""
    out: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, str):
            out[key.lower()] = value
    return out
