"""Document formats: names, MIME types, extensions, and detection from a request.

Detection trusts, in order: the file name's extension, the declared content type, then the
bytes themselves. Names and types are cheap and usually right; sniffing covers raw uploads
that carry neither. A format named by extension but contradicted by the content is caught
later, when parsing fails with ``MALFORMED_DOCUMENT``.
"""
from __future__ import annotations

import io
import re
import zipfile
from enum import StrEnum

from violet_grpc.errors import InvalidArgument


class DocumentFormat(StrEnum):
    """A format Violet translates; values are the names ``MinerCapabilities.document_formats`` lists."""

    TXT = "txt"
    MARKDOWN = "md"
    HTML = "html"
    SRT = "srt"
    DOCX = "docx"


_CONTENT_TYPES = {
    DocumentFormat.TXT: "text/plain; charset=utf-8",
    DocumentFormat.MARKDOWN: "text/markdown; charset=utf-8",
    DocumentFormat.HTML: "text/html; charset=utf-8",
    DocumentFormat.SRT: "application/x-subrip",
    DocumentFormat.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_BY_EXTENSION = {
    "txt": DocumentFormat.TXT, "text": DocumentFormat.TXT,
    "md": DocumentFormat.MARKDOWN, "markdown": DocumentFormat.MARKDOWN, "mdown": DocumentFormat.MARKDOWN,
    "mkd": DocumentFormat.MARKDOWN,
    "html": DocumentFormat.HTML, "htm": DocumentFormat.HTML, "xhtml": DocumentFormat.HTML,
    "srt": DocumentFormat.SRT,
    "docx": DocumentFormat.DOCX,
}
_BY_MIME = {
    "text/plain": DocumentFormat.TXT,
    "text/markdown": DocumentFormat.MARKDOWN, "text/x-markdown": DocumentFormat.MARKDOWN,
    "text/html": DocumentFormat.HTML, "application/xhtml+xml": DocumentFormat.HTML,
    "application/x-subrip": DocumentFormat.SRT, "application/srt": DocumentFormat.SRT,
    "text/srt": DocumentFormat.SRT, "text/x-srt": DocumentFormat.SRT,
    _CONTENT_TYPES[DocumentFormat.DOCX]: DocumentFormat.DOCX,
}
#: Extensions and types of formats people commonly try but Violet does not translate:
#: refusing them by name gives a clearer error than sniffing their bytes.
_REFUSED_EXTENSIONS = frozenset({"pdf", "doc", "odt", "rtf", "pptx", "xlsx", "epub", "vtt", "ass", "ssa"})
_SRT_CUE = re.compile(r"^\s*\d+\s*\r?\n\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}\s*-->", re.M)
_HTML = re.compile(r"<!doctype\s+html|<html[\s>]|<(?:head|body|p|div|h[1-6]|table|ul|ol|span|a)\b[^>]*>", re.I)
_MARKDOWN = re.compile(
    r"^#{1,6}[ \t]+\S|^```|^~~~|\[[^\]\n]+\]\([^)\n]+\)|\*\*[^*\n]+\*\*|^[ \t]*[-*+][ \t]+\[[ xX]\]",
    re.M,
)


def supported_formats() -> tuple[DocumentFormat, ...]:
    """Every format ``translate_document`` accepts."""
    return tuple(DocumentFormat)


def supported_extensions() -> list[str]:
    """Format names as ``MinerCapabilities.document_formats`` lists them ("txt", "md"...)."""
    return [fmt.value for fmt in DocumentFormat]


def content_type(fmt: DocumentFormat) -> str:
    """The MIME type to serve a document of this format with."""
    return _CONTENT_TYPES[fmt]


def file_extension(fmt: DocumentFormat) -> str:
    """The usual file extension, with its dot (".md"), as ``mimetypes`` writes them."""
    return "." + fmt.value


def unsupported_format(detail: str, **metadata: str) -> InvalidArgument:
    """The error for a document Violet cannot translate, listing what it can."""
    return InvalidArgument(
        f"{detail}; supported formats: {', '.join(supported_extensions())}",
        reason="UNSUPPORTED_FORMAT",
        metadata={"supported_formats": ",".join(supported_extensions()), **metadata},
    )


def detect_format(filename: str | None, content_type: str | None, data: bytes) -> DocumentFormat:
    """Decide a document's format from its name, declared type and bytes.

    Args:
        filename: Upload name, when known ("notes.md").
        content_type: Declared MIME type, when known (parameters are ignored).
        data: The document.

    Raises:
        InvalidArgument: ``UNSUPPORTED_FORMAT`` (metadata lists the supported formats) for a
            format Violet does not translate.
    """
    extension = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    if extension in _BY_EXTENSION:
        return _BY_EXTENSION[extension]
    if extension in _REFUSED_EXTENSIONS:
        raise unsupported_format(f"'.{extension}' files are not translated", extension=extension)
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in _BY_MIME:
        return _BY_MIME[mime]
    return _sniff(data, mime)


def _sniff(data: bytes, mime: str) -> DocumentFormat:
    if data.startswith(b"PK\x03\x04"):
        if _is_docx(data):
            return DocumentFormat.DOCX
        raise unsupported_format("the document is a ZIP archive but not a DOCX file", content_type=mime)
    head = data[:65536]
    text = _as_text(head)
    if text is None:
        raise unsupported_format("the document is binary data of an unknown format", content_type=mime)
    if _SRT_CUE.search(text[:4096]):
        return DocumentFormat.SRT
    if _HTML.search(text[:4096]):
        return DocumentFormat.HTML
    if _MARKDOWN.search(text):
        return DocumentFormat.MARKDOWN
    return DocumentFormat.TXT


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _as_text(head: bytes) -> str | None:
    """The start of the document as text, or None when it looks binary."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="ignore")
    if b"\x00" in head:
        return None
    # Cut at most three bytes of a character split by the 64 KiB window.
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    text = head.decode("cp1252", errors="replace")
    return None if "\ufffd" in text or re.search(r"[\x00-\x08\x0e-\x1f]", text) else text
