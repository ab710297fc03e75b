"""DOCX translation with python-docx: paragraphs, runs and their formatting survive.

Each paragraph (in the body, tables, text boxes, headers, footers and comments) is one
translation unit, so sentences keep their context. Its runs become paired markers: an engine
that understands markup moves a run's formatting with the words it formatted ("a **red**
car" -> "un coche **rojo**"), and the paragraph is rebuilt from copies of the original runs
in the translated order. A run the engine splits becomes two runs with the same formatting;
text the engine leaves outside every run takes the formatting of the paragraph's longest run.
Runs holding anything but text (images, fields, breaks between pages), bookmarks and
hyperlinks with non-text content come back verbatim. Adjacent runs with identical formatting
are merged first, since Word splits runs for spell-checking and revision ids, and every
needless split costs the engine sentence context.

Not translated: footnotes and endnotes (python-docx does not load those parts), image alt
text, and field codes.
"""
from __future__ import annotations

import copy
import io
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from violet_grpc.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from violet_grpc.miner.documents._markup import (
    Atom,
    Close,
    Event,
    Fragment,
    FragmentBuilder,
    Marker,
    Open,
    Text,
    translate_fragments,
)
from violet_grpc.miner.engines.translate import WORD, LanguagePair, Translator

if TYPE_CHECKING:
    from docx.document import Document

#: How much larger than the upload a DOCX may grow when unzipped (a zip-bomb guard).
MAX_EXPANSION = 20
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_P, _PPR, _R, _RPR = f"{_W}p", f"{_W}pPr", f"{_W}r", f"{_W}rPr"
_HYPERLINK, _PROOF_ERR, _BR = f"{_W}hyperlink", f"{_W}proofErr", f"{_W}br"
#: Run children that are text (or layout python-docx rebuilds from text: tabs, line breaks).
_TEXT_CHILDREN = frozenset(
    f"{_W}{name}" for name in ("rPr", "t", "tab", "br", "cr", "noBreakHyphen", "lastRenderedPageBreak")
)


def translate_docx(data: bytes, pair: LanguagePair, translator: Translator, max_bytes: int) -> bytes:
    """Translate a DOCX file, keeping paragraph styles and run formatting.

    Raises:
        InvalidArgument: ``MALFORMED_DOCUMENT`` for a file that is not a Word document,
            ``EMPTY_DOCUMENT`` when it has no text.
        ResourceExhausted: ``DOCUMENT_TOO_LARGE`` when it unzips to more than
            ``MAX_EXPANSION`` times ``max_bytes``.
    """
    document = _open(data, max_bytes)
    paragraphs = [p for part in _text_parts(document) for p in part.element.iter(_P)]
    if not any(WORD.search(_run_text(r)) for p in paragraphs for r in p.iter(_R)):
        raise InvalidArgument("the document has no text to translate", reason="EMPTY_DOCUMENT")
    prepared = [_prepare(p) for p in paragraphs]
    results = translate_fragments(translator, [unit.fragment for unit in prepared], pair)
    for unit, events in zip(prepared, results, strict=True):
        if unit.fragment.has_words:
            _rebuild(unit, events)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _open(data: bytes, max_bytes: int) -> Document:
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
        from lxml.etree import XMLSyntaxError
    except ImportError:
        raise FailedPrecondition(
            "DOCX support needs python-docx; run: pip install python-docx",
            reason="ENGINE_NOT_INSTALLED",
            metadata={"package": "python-docx", "install": "pip install python-docx"},
        ) from None
    # Corrupt archives surface as any of these, from zipfile, zlib or python-docx's parser;
    # all mean the upload is not a usable DOCX. RuntimeError is an encrypted member.
    corrupt = (
        zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
        KeyError, ValueError, PackageNotFoundError, XMLSyntaxError,
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_expansion(archive, max_bytes)
            # Decompress every member now, so corruption fails here rather than mid-translation.
            broken = archive.testzip()
        if broken is None:
            return docx.Document(io.BytesIO(data))
    except corrupt:
        pass
    raise InvalidArgument(
        "the document is not a valid DOCX file", reason="MALFORMED_DOCUMENT", metadata={"format": "docx"}
    )


def _check_expansion(archive: zipfile.ZipFile, max_bytes: int) -> None:
    unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > max_bytes * MAX_EXPANSION:
        raise ResourceExhausted(
            f"the DOCX unpacks to {unpacked} bytes, over the {max_bytes * MAX_EXPANSION} byte limit",
            reason="DOCUMENT_TOO_LARGE",
            metadata={"unpacked_bytes": str(unpacked), "limit_bytes": str(max_bytes * MAX_EXPANSION)},
        )


def _text_parts(document: Document) -> Iterator[Any]:
    """The XML parts that hold prose: body, headers, footers, comments (each once)."""
    from docx.opc.constants import CONTENT_TYPE as CT
    from docx.opc.part import XmlPart

    wanted = {CT.WML_DOCUMENT_MAIN, CT.WML_HEADER, CT.WML_FOOTER, CT.WML_COMMENTS}
    for part in document.part.package.iter_parts():
        if isinstance(part, XmlPart) and part.content_type in wanted:
            yield part


# -- paragraphs ------------------------------------------------------------------------------


@dataclass
class _Unit:
    """A paragraph ready to translate: its fragment and the run that lends default formatting."""

    paragraph: Any
    fragment: Fragment
    base: Any = None


def _run_text(run: Any) -> str:
    return str(run.text) if run.tag == _R else ""


def _is_text_run(element: Any) -> bool:
    if element.tag != _R or any(child.tag not in _TEXT_CHILDREN for child in element):
        return False
    # A page or column break is layout, not a line of the sentence.
    return not any(br.get(f"{_W}type") in ("page", "column") for br in element.iter(_BR))


def _prepare(paragraph: Any) -> _Unit:
    # Spell-check marks mean nothing after translation, and they would split runs apart.
    for mark in list(paragraph.iter(_PROOF_ERR)):
        mark.getparent().remove(mark)
    _merge_runs(paragraph)
    builder = FragmentBuilder()
    unit = _Unit(paragraph, Fragment("", [], False))
    for child in list(paragraph):
        if child.tag != _PPR:
            _add_child(builder, unit, child)
    unit.fragment = builder.build()
    return unit


def _add_child(builder: FragmentBuilder, unit: _Unit, child: Any) -> None:
    if _is_text_run(child) and child.text:
        builder.open("span", Marker(close="", payload=child))
        builder.text(str(child.text))
        builder.close()
        if unit.base is None or len(child.text) > len(unit.base.text):
            unit.base = child
    elif child.tag == _HYPERLINK and len(child) and all(_is_text_run(r) and r.text for r in child):
        _merge_runs(child)
        builder.open("a", Marker(close="", payload=child))
        for run in child:
            _add_child(builder, unit, run)
        builder.close()
    else:
        builder.atom(Marker(payload=child))


def _merge_runs(container: Any) -> None:
    """Join adjacent text runs whose formatting (``w:rPr``) is identical."""
    from lxml import etree

    previous = None
    for child in list(container):
        if not _is_text_run(child):
            previous = None
            continue
        if previous is not None and _format_key(previous, etree) == _format_key(child, etree):
            previous.text = str(previous.text) + str(child.text)
            container.remove(child)
        else:
            previous = child


def _format_key(run: Any, etree: Any) -> bytes:
    rpr = run.find(_RPR)
    return b"" if rpr is None else bytes(etree.tostring(rpr))


def _rebuild(unit: _Unit, events: Sequence[Event]) -> None:
    """Refill the paragraph from copies of its runs, in the translated order."""
    paragraph, markers = unit.paragraph, unit.fragment.markers
    for child in list(paragraph):
        if child.tag != _PPR:
            paragraph.remove(child)
    builder = _Rebuilder(paragraph, unit.base)
    for event in events:
        if isinstance(event, Open):
            builder.open(markers[event.index].payload)
        elif isinstance(event, Close):
            builder.close()
        elif isinstance(event, Atom):
            builder.atom(event.index, markers[event.index].payload)
        elif isinstance(event, Text):
            builder.text(event.text)
    builder.finish()
    _merge_runs(paragraph)


class _Rebuilder:
    """Appends run copies and verbatim elements to a paragraph, tracking nesting."""

    def __init__(self, paragraph: Any, base: Any) -> None:
        self.containers = [paragraph]
        self.stack: list[tuple[str, Any]] = []
        self.texts: list[tuple[Any, list[str]]] = []
        self.base = base
        self.base_copies: list[tuple[Any, list[str]]] = []
        self.used: set[int] = set()

    def open(self, element: Any) -> None:
        clone = copy.deepcopy(element)
        if element.tag == _HYPERLINK:
            for child in list(clone):
                clone.remove(child)
            self.containers[-1].append(clone)
            self.containers.append(clone)
            self.stack.append(("container", clone))
            return
        self.containers[-1].append(clone)
        self.texts.append((clone, []))
        self.stack.append(("run", self.texts[-1][1]))

    def close(self) -> None:
        if not self.stack:
            return
        kind, _ = self.stack.pop()
        if kind == "container":
            self.containers.pop()

    def atom(self, index: int, element: Any) -> None:
        self.containers[-1].append(element if index not in self.used else copy.deepcopy(element))
        self.used.add(index)

    def text(self, text: str) -> None:
        runs = [parts for kind, parts in self.stack if kind == "run"]
        if runs:
            runs[-1].append(text)
            return
        if self.base is None:
            return
        # Text outside every run: extend the base-formatted run just written, or start one.
        # (lxml hands back the same proxy object while a reference is held, so ``is`` works.)
        container = self.containers[-1]
        last = container[-1] if len(container) else None
        if self.base_copies and last is self.base_copies[-1][0]:
            self.base_copies[-1][1].append(text)
            return
        clone = copy.deepcopy(self.base)
        container.append(clone)
        self.texts.append((clone, [text]))
        self.base_copies.append(self.texts[-1])

    def finish(self) -> None:
        for run, parts in self.texts:
            run.text = "".join(parts)
