"""Inline markers: how a format's inline structure rides through a translation engine.

Every format turns each translatable unit (a Markdown paragraph, a subtitle cue, a DOCX
paragraph) into a small HTML fragment: its text, escaped, with each piece of inline
structure as an element carrying a ``data-m`` index into a marker table. Formatting that
wraps words (emphasis, a link, a DOCX run) is a paired element, so engines that understand
markup move it with the words; things that must come back verbatim (inline code, an image,
a field) are empty ``<code>`` elements. All fragments of a document are translated in one
``translate_html`` call, and the result is read back as a list of events the format turns
into its own syntax.
"""
from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from violet_grpc.errors import Internal
from violet_grpc.miner.engines.translate import WORD, LanguagePair, Translator, html_tokens

_SEGMENT = re.compile(r'<div data-vs="(\d+)">(.*?)</div>', re.S)


@dataclass
class Marker:
    """What a marker stands for in the source format.

    Attributes:
        open: Source text for the opening (or, for an atom, the whole item).
        close: Source text for the closing; ``None`` marks an atom.
        payload: Format-specific data (a DOCX run element, for instance).
    """

    open: str = ""
    close: str | None = None
    payload: object = None


@dataclass(frozen=True)
class Text:
    """Translated text between markers (unescaped)."""

    text: str


@dataclass(frozen=True)
class Open:
    """A paired marker opens."""

    index: int


@dataclass(frozen=True)
class Close:
    """A paired marker closes."""

    index: int


@dataclass(frozen=True)
class Atom:
    """A verbatim item."""

    index: int


Event = Text | Open | Close | Atom


@dataclass
class Fragment:
    """One translatable unit: inline HTML plus the markers it refers to."""

    html: str
    markers: list[Marker]
    has_words: bool


@dataclass
class FragmentBuilder:
    """Builds a ``Fragment`` from a format's inline structure, in reading order."""

    _parts: list[str] = field(default_factory=list)
    _markers: list[Marker] = field(default_factory=list)
    _stack: list[str] = field(default_factory=list)
    _has_words: bool = False

    def text(self, text: str) -> None:
        """Append translatable text."""
        self._parts.append(htmllib.escape(text, quote=False))
        self._has_words = self._has_words or bool(WORD.search(text))

    def open(self, tag: str, marker: Marker) -> None:
        """Open a paired marker rendered as inline element ``tag`` (b, i, a, s, span...)."""
        self._parts.append(f'<{tag} data-m="{len(self._markers)}">')
        self._markers.append(marker)
        self._stack.append(tag)

    def close(self) -> None:
        """Close the innermost open marker."""
        self._parts.append(f"</{self._stack.pop()}>")

    def atom(self, marker: Marker) -> None:
        """Append an item that comes back verbatim."""
        self._parts.append(f'<code data-m="{len(self._markers)}"></code>')
        self._markers.append(marker)

    def build(self) -> Fragment:
        """The finished fragment (open markers are closed)."""
        while self._stack:
            self.close()
        return Fragment("".join(self._parts), self._markers, self._has_words)


def translate_fragments(
    translator: Translator, fragments: Sequence[Fragment], pair: LanguagePair
) -> list[list[Event]]:
    """Translate all fragments of a document in one engine call.

    Each fragment travels in its own ``<div>``, so engines keep them apart as separate
    blocks and the result splits back exactly. Fragments without words are not sent.

    Returns:
        The events of each fragment, in order.

    Raises:
        Internal: ``ENGINE_OUTPUT_MALFORMED`` when the engine lost a fragment's boundary.
    """
    jobs = [i for i, fragment in enumerate(fragments) if fragment.has_words]
    translated = {i: fragments[i].html for i in range(len(fragments))}
    if jobs:
        document = "\n".join(f'<div data-vs="{j}">{fragments[i].html}</div>' for j, i in enumerate(jobs))
        found = {int(m.group(1)): m.group(2) for m in _SEGMENT.finditer(translator.translate_html(document, pair))}
        if sorted(found) != list(range(len(jobs))):
            raise Internal(
                f"the {translator.name} engine changed the document's segment markup",
                reason="ENGINE_OUTPUT_MALFORMED",
                metadata={"engine": translator.name, "expected": str(len(jobs)), "found": str(len(found))},
            )
        translated.update({i: found[j] for j, i in enumerate(jobs)})
    return [parse_fragment(translated[i], fragments[i].markers) for i in range(len(fragments))]


def parse_fragment(html: str, markers: Sequence[Marker]) -> list[Event]:
    """Read a (translated) fragment back into events.

    Engines may reorder or duplicate paired markers; each copy becomes its own Open/Close.
    Markup an engine invented is ignored, atoms it lost are appended and markers it left
    open are closed, so the format always gets a complete, balanced event list.
    """
    events: list[Event] = []
    stack: list[tuple[str, int]] = []
    for token in html_tokens(html):
        index = _marker_index(token.attr("data-m"), markers) if token.kind in ("start", "startend") else None
        if token.kind == "text":
            events.append(Text(htmllib.unescape(token.raw)))
        elif index is not None and markers[index].close is None:
            events.append(Atom(index))
        elif index is not None:
            stack.append((token.name, index))
            events.append(Open(index))
        elif token.kind == "end" and stack and stack[-1][0] == token.name:
            events.append(Close(stack.pop()[1]))
    events.extend(Close(index) for _, index in reversed(stack))
    seen = {event.index for event in events if isinstance(event, Atom)}
    events.extend(Atom(i) for i, m in enumerate(markers) if m.close is None and i not in seen)
    return events


def _marker_index(value: str | None, markers: Sequence[Marker]) -> int | None:
    if value is None or not value.isdigit() or int(value) >= len(markers):
        return None
    return int(value)


def render(events: Sequence[Event], markers: Sequence[Marker], escape: Callable[[str], str] | None = None) -> str:
    """Turn events back into source text: markers' own text, and text through ``escape``.

    Args:
        events: From ``parse_fragment``.
        markers: The fragment's markers.
        escape: A ``str -> str`` function making text safe in the format (identity if None).
    """
    out: list[str] = []
    for event in events:
        if isinstance(event, Text):
            out.append(escape(event.text) if escape else event.text)
        elif isinstance(event, Close):
            out.append(markers[event.index].close or "")
        else:
            out.append(markers[event.index].open)
    return "".join(out)
