"""SubRip (SRT) translation: cue numbers and timings stay byte for byte, cue text is translated.

A cue's lines are translated together, since subtitle lines split sentences wherever the
screen width demanded; the line breaks travel as markers, so a two-line cue stays two lines.
The tags players honour (``<i>``, ``<b>``, ``<u>``, ``<font ...>``) wrap the words they wrap
in the source, and ASS override blocks such as ``{\\an8}`` stay where they were.
"""
from __future__ import annotations

import re

from violet_grpc.errors import InvalidArgument
from violet_grpc.miner.documents._markup import Fragment, FragmentBuilder, Marker, render, translate_fragments
from violet_grpc.miner.engines.translate import (
    VOID_ELEMENTS,
    WORD,
    HtmlToken,
    LanguagePair,
    Translator,
    element_end,
    html_tokens,
)

_TIMING = re.compile(r"^\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}\s*-->\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}")
_LITERAL = re.compile(r"(\n|\{\\[^}]*\})")


def translate_srt(text: str, pair: LanguagePair, translator: Translator) -> str:
    """Translate the cue text of an SRT file.

    Raises:
        InvalidArgument: ``MALFORMED_DOCUMENT`` when no cue timing line is found.
    """
    source = text.split("\n")
    lines: list[str | None] = list(source)
    cues = cue_spans(source)
    if not cues:
        raise InvalidArgument(
            "the document is not an SRT file: no cue timing line ('00:00:01,000 --> 00:00:02,000')",
            reason="MALFORMED_DOCUMENT",
            metadata={"format": "srt"},
        )
    fragments = [_cue_fragment("\n".join(source[start:end])) for start, end in cues]
    translated = list(zip(cues, fragments, translate_fragments(translator, fragments, pair), strict=True))
    # Back to front, so a cue that changes its line count cannot shift the ones still to go.
    for (start, end), fragment, events in reversed(translated):
        if not fragment.has_words:
            continue
        # A blank line would end the cue early, so lines the engine emptied are dropped.
        cue = [line for line in render(events, fragment.markers).split("\n") if line.strip()]
        lines[start:end] = [*cue, *[None] * (end - start - len(cue))]
    return "\n".join(line for line in lines if line is not None)


def cue_spans(lines: list[str]) -> list[tuple[int, int]]:
    """Line ranges ``[start, end)`` of each cue's text (the lines after its timing line)."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        if not _TIMING.match(lines[i]):
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip():
            end += 1
        spans.append((i + 1, end))
        i = end
    return spans


def _cue_fragment(cue: str) -> Fragment:
    """Markers for a cue: its tags pair up where they can; line breaks are atoms."""
    tokens = html_tokens(cue)
    builder = FragmentBuilder()
    closing: set[int] = set()
    for i, token in enumerate(tokens):
        end = element_end(tokens, i) if token.kind == "start" and token.name not in VOID_ELEMENTS else None
        if token.kind == "text":
            _literal_text(builder, token.raw)
        elif end is not None and _has_words(tokens[i + 1 : end]):
            builder.open("span", Marker(token.raw, tokens[end].raw))
            closing.add(end)
        elif i in closing:
            builder.close()
        else:
            builder.atom(Marker(token.raw))
    return builder.build()


def _literal_text(builder: FragmentBuilder, raw: str) -> None:
    for piece in _LITERAL.split(raw):
        if _LITERAL.fullmatch(piece):
            builder.atom(Marker(piece))
        elif piece:
            builder.text(piece)


def _has_words(tokens: list[HtmlToken]) -> bool:
    return any(t.kind == "text" and WORD.search(t.raw) for t in tokens)
