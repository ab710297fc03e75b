"""Reading uploads that arrive as ``google.api.HttpBody``.

Through Envoy, a ``curl -F`` upload arrives as the raw multipart body with its full content
type (boundary included); gRPC clients and raw REST uploads send the file bytes with the
file's own content type. Both become one :class:`Upload`. Forms are parsed with
python-multipart, never by hand.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from python_multipart import parse_form
from python_multipart.exceptions import FormParserError

from violet_grpc import errors


@dataclass(frozen=True)
class Upload:
    """A file taken out of a request, plus any other form fields sent with it."""

    data: bytes
    content_type: str
    filename: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    #: Every value of each form field in order, for fields sent more than once
    #: (OpenAI clients repeat ``timestamp_granularities[]``); ``fields`` keeps the last.
    repeated: dict[str, list[str]] = field(default_factory=dict)


def read_upload(body: object, *, file_fields: Sequence[str], max_bytes: int, what: str) -> Upload:
    """Extracts the uploaded file from an HttpBody (multipart or raw).

    Args:
        body: The request's ``google.api.HttpBody``.
        file_fields: Form field names that may hold the file (first found wins).
        max_bytes: Largest accepted file.
        what: What the file is, for error messages ("audio", "video", "document").

    Raises:
        InvalidArgument: no body, malformed form, or no file part.
        ResourceExhausted: the file is larger than ``max_bytes``.
    """
    content_type = getattr(body, "content_type", "") or ""
    data = bytes(getattr(body, "data", b""))
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)
    if content_type.lower().startswith("multipart/form-data"):
        return _read_form(data, content_type, file_fields, max_bytes, what)
    if not data:
        raise errors.InvalidArgument(
            f"no {what} was sent: upload the file as the request body or as the multipart field "
            f"{file_fields[0]!r}",
            reason="EMPTY_UPLOAD",
            metadata={"field": file_fields[0]},
        )
    return Upload(data=data, content_type=content_type.split(";")[0].strip() or "application/octet-stream")


def _read_form(data: bytes, content_type: str, file_fields: Sequence[str], max_bytes: int, what: str) -> Upload:
    files: dict[str, tuple[bytes, str, str]] = {}
    fields: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}

    def on_field(f: object) -> None:
        name = (f.field_name or b"").decode("utf-8", "replace")  # type: ignore[attr-defined]
        value = f.value  # type: ignore[attr-defined]
        fields[name] = value.decode("utf-8", "replace") if value is not None else ""
        repeated.setdefault(name, []).append(fields[name])

    def on_file(f: object) -> None:
        f.file_object.seek(0)  # type: ignore[attr-defined]
        name = (f.field_name or b"").decode("utf-8", "replace")  # type: ignore[attr-defined]
        filename = (f.file_name or b"").decode("utf-8", "replace")  # type: ignore[attr-defined]
        part_type = getattr(f, "content_type", None) or b""
        if isinstance(part_type, bytes):
            part_type = part_type.decode("latin-1")
        files[name] = (f.file_object.read(), filename, part_type)  # type: ignore[attr-defined]

    headers = {"Content-Type": content_type.encode("latin-1"), "Content-Length": str(len(data)).encode()}
    try:
        parse_form(headers, io.BytesIO(data), on_field, on_file)
    except (FormParserError, ValueError) as exc:
        raise errors.InvalidArgument(f"the multipart form could not be read: {exc}", reason="MALFORMED_MULTIPART") from exc
    for name in file_fields:
        if name in files:
            payload, filename, part_type = files[name]
            if not payload:
                break
            if len(payload) > max_bytes:
                raise _too_large(len(payload), max_bytes)
            return Upload(data=payload, content_type=_guess_type(part_type, filename), filename=filename, fields=fields,
                          repeated=repeated)
        if name in fields and fields[name]:
            # Some clients send small files without a filename, which makes them plain fields.
            return Upload(data=fields.pop(name).encode(), content_type="application/octet-stream", fields=fields,
                          repeated=repeated)
    raise errors.InvalidArgument(
        f"the form has no {what} file: send it in the field {file_fields[0]!r} (curl -F '{file_fields[0]}=@FILE')",
        reason="MISSING_FILE_PART",
        metadata={"field": file_fields[0]},
    )


def _guess_type(part_type: str, filename: str) -> str:
    if part_type and part_type != "application/octet-stream":
        return part_type
    import mimetypes

    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def _too_large(size: int, limit: int) -> errors.ResourceExhausted:
    return errors.ResourceExhausted(
        f"the upload is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB",
        reason="UPLOAD_TOO_LARGE",
        metadata={"size_bytes": str(size), "limit_bytes": str(limit)},
    )


def form_value(upload: Upload, name: str, given: str) -> str:
    """A request field, falling back to the same-named form field (multipart sends them there)."""
    return given or upload.fields.get(name, "")


def form_values(upload: Upload, name: str) -> list[str]:
    """Every value of a form field sent once or more (empty when absent)."""
    return list(upload.repeated.get(name, ()))


def form_flag(upload: Upload, name: str, given: bool) -> bool:
    """A boolean request field, falling back to the form ("true", "1", "yes", "on")."""
    return given or upload.fields.get(name, "").strip().lower() in ("1", "true", "yes", "on")
