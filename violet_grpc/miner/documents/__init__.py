"""Structure-preserving document translation: TXT, Markdown, HTML, SRT and DOCX.

A translated document is a file of the same format that opens and renders like the
original: the engine only ever sees text (plus inline markup it can move along with the
words), and every format rebuilds its own syntax around the translation. See each
``_<format>.py`` module for what that format keeps and why.
"""
from __future__ import annotations

from collections.abc import Callable

from violet_grpc.errors import InvalidArgument, ResourceExhausted
from violet_grpc.miner.documents._docx import translate_docx
from violet_grpc.miner.documents._formats import (
    DocumentFormat,
    content_type,
    detect_format,
    file_extension,
    supported_extensions,
    supported_formats,
    unsupported_format,
)
from violet_grpc.miner.documents._html import translate_html_document
from violet_grpc.miner.documents._markdown import translate_markdown
from violet_grpc.miner.documents._srt import translate_srt
from violet_grpc.miner.documents._text import decode_text, translate_plain_text
from violet_grpc.miner.engines.translate import LanguagePair, Translator, check_pair

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DocumentFormat",
    "content_type",
    "detect_format",
    "file_extension",
    "supported_extensions",
    "supported_formats",
    "translate_document",
]

#: Largest upload translated by default (a long book as DOCX is a few MB).
DEFAULT_MAX_BYTES = 10 * 1024 * 1024

_TextTranslation = Callable[[str, LanguagePair, Translator], str]
#: Text formats: name for messages, translation function, how to encode unmappable characters.
_TEXT_FORMATS: dict[DocumentFormat, tuple[str, _TextTranslation, str]] = {
    DocumentFormat.TXT: ("plain", translate_plain_text, "strict"),
    DocumentFormat.MARKDOWN: ("Markdown", translate_markdown, "strict"),
    # HTML keeps a legacy declared charset valid with character references.
    DocumentFormat.HTML: ("HTML", translate_html_document, "xmlcharrefreplace"),
    DocumentFormat.SRT: ("SRT", translate_srt, "strict"),
}


def translate_document(
    data: bytes,
    fmt: DocumentFormat,
    pair: LanguagePair,
    translator: Translator,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Translate a document, returning a file of the same format.

    Args:
        data: The document's bytes.
        fmt: Its format (see ``detect_format``).
        pair: Direction to translate in; must be one the translator serves.
        translator: The engine.
        max_bytes: Largest document accepted.

    Returns:
        The translated document, encoded like the original (text formats keep their encoding,
        BOM and line endings; legacy single-byte text comes back as UTF-8).

    Raises:
        ResourceExhausted: ``DOCUMENT_TOO_LARGE`` over ``max_bytes``.
        InvalidArgument: ``UNSUPPORTED_LANGUAGE_PAIR``, ``UNSUPPORTED_FORMAT``,
            ``EMPTY_DOCUMENT`` (nothing but whitespace), ``MALFORMED_DOCUMENT`` (the bytes
            are not a document of that format).
    """
    if len(data) > max_bytes:
        raise ResourceExhausted(
            f"the document is {len(data)} bytes, over the {max_bytes} byte limit",
            reason="DOCUMENT_TOO_LARGE",
            metadata={"size_bytes": str(len(data)), "limit_bytes": str(max_bytes)},
        )
    if not data.strip():
        raise InvalidArgument("the document is empty", reason="EMPTY_DOCUMENT")
    check_pair(translator, pair)
    if fmt == DocumentFormat.DOCX:
        return translate_docx(data, pair, translator, max_bytes)
    if fmt not in _TEXT_FORMATS:
        raise unsupported_format(f"format {fmt!r} is not translated")
    name, translate, legacy_errors = _TEXT_FORMATS[DocumentFormat(fmt)]
    text, codec = decode_text(data, name)
    if not text.strip():
        raise InvalidArgument("the document is empty", reason="EMPTY_DOCUMENT")
    return codec.encode(translate(text, pair, translator), legacy_errors=legacy_errors)
