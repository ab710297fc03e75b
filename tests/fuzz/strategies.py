"""Hypothesis strategies built from protobuf descriptors, and what a fuzzed call may answer.

Messages are drawn field by field from each request's descriptor, so a new field in a
``.proto`` file is fuzzed without touching the tests. Every scalar type gets its full range
plus edge values; enums get their values and numbers the contract does not define; strings
and bytes get random values mixed with ``hints`` (ids that exist, voices and languages that
are served, real audio), so the fuzzer also reaches the code behind the first validation.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import strategies as st

from tests.helpers import tone_wav  # noqa: F401  (re-exported for the fuzz tests)

F = FieldDescriptor

#: What a Violet server may answer a bad request with (DESIGN §2, STYLE "Errors"). INTERNAL
#: and UNKNOWN mean a bug escaped the error handling, so a fuzzer must never see them.
DOCUMENTED_CODES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
})

_INT_RANGES = {
    F.TYPE_INT32: (-2**31, 2**31 - 1), F.TYPE_SINT32: (-2**31, 2**31 - 1), F.TYPE_SFIXED32: (-2**31, 2**31 - 1),
    F.TYPE_INT64: (-2**63, 2**63 - 1), F.TYPE_SINT64: (-2**63, 2**63 - 1), F.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}


def mutated(sample: bytes) -> st.SearchStrategy[bytes]:
    """``sample`` cut short, with bytes overwritten, or with random bytes spliced in."""
    size = len(sample)
    cut = st.integers(0, size).map(lambda n: sample[:n])
    flipped = st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=20).map(
        lambda edits: _apply(sample, edits))
    spliced = st.tuples(st.integers(0, size), st.binary(max_size=64)).map(lambda t: sample[:t[0]] + t[1] + sample[t[0]:])
    return st.one_of(cut, flipped, spliced)


def _apply(sample: bytes, edits: Sequence[tuple[int, int]]) -> bytes:
    data = bytearray(sample)
    for index, value in edits:
        data[index] = value
    return bytes(data)


def audio_bytes(samples: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, real files, and real files damaged."""
    return st.one_of(st.binary(max_size=4096), st.sampled_from(list(samples)),
                     st.sampled_from(list(samples)).flatmap(mutated))


def multipart_body(fields: Sequence[str], payloads: st.SearchStrategy[bytes]) -> st.SearchStrategy[tuple[str, bytes]]:
    """(content type, body) of multipart forms, well-formed or not, with file and text parts."""
    boundary = st.sampled_from(["XyZ", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "a" * 70, "b"])
    part = st.tuples(st.sampled_from([*fields, "source_language", "wait_for_completion", "", "x" * 300]),
                     st.one_of(st.none(), st.text(max_size=20)), st.sampled_from(["audio/wav", "", "text/plain",
                                                                                    "application/octet-stream"]),
                     st.one_of(payloads, st.text(max_size=30).map(str.encode)))

    def build(args: tuple[str, list[tuple[str, str | None, str, bytes]], bool, bytes]) -> tuple[str, bytes]:
        sep, parts, close, junk = args
        body = b""
        for name, filename, part_type, payload in parts:
            disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
            body += f"--{sep}\r\nContent-Disposition: {disposition}\r\n".encode("utf-8", "replace")
            if part_type:
                body += f"Content-Type: {part_type}\r\n".encode()
            body += b"\r\n" + payload + b"\r\n"
        body += f"--{sep}--\r\n".encode() if close else junk
        return f"multipart/form-data; boundary={sep}", body

    return st.tuples(boundary, st.lists(part, max_size=3), st.booleans(), st.binary(max_size=32)).map(build)


class Hints:
    """Values worth trying in string and bytes fields besides random ones."""

    def __init__(self, strings: Sequence[str] = (), blobs: Sequence[bytes] = ()) -> None:
        self.strings = list(strings)
        self.blobs = list(blobs)

    def text(self) -> st.SearchStrategy[str]:
        random = st.text(max_size=40)
        return st.one_of(random, st.sampled_from(self.strings)) if self.strings else random

    def binary(self) -> st.SearchStrategy[bytes]:
        random = st.binary(max_size=2048)
        if not self.blobs:
            return random
        return st.one_of(random, st.sampled_from(self.blobs), st.sampled_from(self.blobs).flatmap(mutated))


def _repeated(field: FieldDescriptor) -> bool:
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return field.label == F.LABEL_REPEATED


def _scalar(field: FieldDescriptor, hints: Hints) -> st.SearchStrategy:
    kind = field.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        edges = [v for v in (0, 1, 2, -1, 100, 8000, 16000, 48000, low, high) if low <= v <= high]
        return st.one_of(st.integers(low, high), st.sampled_from(edges))
    if kind in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if kind == F.TYPE_FLOAT else 64)
    if kind == F.TYPE_BOOL:
        return st.booleans()
    if kind == F.TYPE_STRING:
        return hints.text()
    if kind == F.TYPE_BYTES:
        return hints.binary()
    if kind == F.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-3, 1000))
    raise TypeError(f"unhandled field type {kind} of {field.full_name}")


def message_strategy(descriptor: Descriptor, hints: Hints | None = None, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type with any subset of fields set to any values."""
    hints = hints or Hints()
    cls = message_factory.GetMessageClass(descriptor)
    parts: dict[str, st.SearchStrategy] = {}
    for field in descriptor.fields:
        if field.type == F.TYPE_MESSAGE:
            if depth >= 3:
                continue
            entry = field.message_type
            if entry.GetOptions().map_entry:
                key = _scalar(entry.fields_by_name["key"], hints)
                value_field = entry.fields_by_name["value"]
                value = (message_strategy(value_field.message_type, hints, depth + 1)
                         if value_field.type == F.TYPE_MESSAGE else _scalar(value_field, hints))
                parts[field.name] = st.none() | st.dictionaries(key, value, max_size=3)
                continue
            inner = message_strategy(entry, hints, depth + 1)
        else:
            inner = _scalar(field, hints)
        parts[field.name] = st.none() | (st.lists(inner, max_size=3) if _repeated(field) else inner)
    return st.fixed_dictionaries(parts).map(lambda values: _build(cls, descriptor, values))


def _build(cls: type[Message], descriptor: Descriptor, values: dict) -> Message:
    message = cls()
    for name, value in values.items():
        if value is None:
            continue
        field = descriptor.fields_by_name[name]
        target = getattr(message, name) if (field.type == F.TYPE_MESSAGE or _repeated(field)) else None
        if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if value_field.type == F.TYPE_MESSAGE:
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif _repeated(field):
            if field.type == F.TYPE_MESSAGE:
                for item in value:
                    target.add().CopyFrom(item)
            else:
                target.extend(value)
        elif field.type == F.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def check_error(error: grpc.RpcError, what: str) -> error_details_pb2.ErrorInfo:
    """Fails unless ``error`` is a documented code carrying Violet's ErrorInfo."""
    code = error.code()
    assert code in DOCUMENTED_CODES, f"{what}: undocumented status {code.name}: {error.details()}"
    status = rpc_status.from_call(error)
    assert status is not None and status.details, f"{what}: {code.name} without a google.rpc.Status: {error.details()}"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info), f"{what}: first detail is not an ErrorInfo"
    assert info.domain == "violet.network" and info.reason, f"{what}: bad ErrorInfo {info}"
    return info


class ErrorLog(logging.Handler):
    """Collects ERROR records (unhandled exceptions, crashed background tasks) while fuzzing."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        taken, self.records = self.records, []
        return [f"{r.name}: {r.getMessage()}" + (f"\n{self.format(r)}" if r.exc_info else "") for r in taken]
