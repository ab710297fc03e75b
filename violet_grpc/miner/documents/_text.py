"""Decoding text documents, and plain-text (TXT) translation.

Text formats are decoded strictly: UTF-8 (with or without a BOM), UTF-16 with a BOM, or,
for the many legacy subtitle and text files, Windows-1252. Control characters other than
layout whitespace mean the bytes are not text, so garbage is refused rather than translated.
Line endings are normalised to ``\\n`` for processing and restored on output.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from violet_grpc.errors import InvalidArgument
from violet_grpc.miner.engines.translate import WORD, LanguagePair, Translator, keep_edges

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class TextCodec:
    """How a text document was stored, so the translation is stored the same way.

    Attributes:
        encoding: Codec that decoded it.
        bom: Byte-order mark it started with (b"" when none).
        newline: ``"\\r\\n"`` or ``"\\n"``.
    """

    encoding: str
    bom: bytes
    newline: str

    def encode(self, text: str, *, legacy_errors: str = "strict") -> bytes:
        """Encode ``text`` (with ``\\n`` line ends) like the original.

        A legacy single-byte source cannot hold every translation (Greek, Cyrillic...), so
        it is written as UTF-8 unless ``legacy_errors`` says how to escape (HTML passes
        ``xmlcharrefreplace``, since character references keep its declared charset valid).
        """
        text = text.replace("\n", self.newline)
        if self.encoding == "cp1252" and legacy_errors == "strict":
            return text.encode("utf-8")
        return self.bom + text.encode(self.encoding, legacy_errors)


def decode_text(data: bytes, what: str) -> tuple[str, TextCodec]:
    """Decode a text document.

    Args:
        data: The document's bytes.
        what: Format name for error messages ("Markdown", "SRT"...).

    Raises:
        InvalidArgument: ``MALFORMED_DOCUMENT`` when the bytes are not text.
    """
    bom, encoding = next(((b, e) for b, e in _BOMS if data.startswith(b)), (b"", "utf-8"))
    try:
        text = data[len(bom) :].decode(encoding)
    except UnicodeDecodeError:
        text, encoding = data.decode("cp1252", errors="replace"), "cp1252"
    if _CONTROL.search(text) or (encoding == "cp1252" and "\ufffd" in text):
        raise InvalidArgument(
            f"the document is not valid {what} text (binary data or an unknown encoding)",
            reason="MALFORMED_DOCUMENT",
            metadata={"format": what},
        )
    newline = "\r\n" if "\r\n" in text else "\n"
    return text.replace("\r\n", "\n"), TextCodec(encoding, bom, newline)


def translate_plain_text(text: str, pair: LanguagePair, translator: Translator) -> str:
    """Translate plain text line by line, keeping every line break and indentation.

    Lines are the unit because plain text has no other structure to trust: lists, verse,
    addresses and tables all live in line breaks. A sentence hard-wrapped over two lines is
    translated as two pieces; that is the price of returning the layout exactly.
    """
    lines = text.split("\n")
    indexes = [i for i, line in enumerate(lines) if WORD.search(line)]
    translated = translator.translate_texts([lines[i] for i in indexes], pair) if indexes else []
    for i, out in zip(indexes, translated, strict=True):
        lines[i] = keep_edges(lines[i], out).replace("\n", " ")
    return "\n".join(lines)
