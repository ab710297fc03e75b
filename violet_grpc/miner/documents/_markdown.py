"""Markdown (CommonMark plus GFM tables and strikethrough) translation.

markdown-it-py finds the blocks and their source lines; only the lines holding paragraph,
heading and table-cell text are rewritten, so everything else (code blocks, fences, raw
HTML blocks, reference definitions, front matter, blank lines) is copied byte for byte.
Inside a block, the inline syntax becomes markers (see ``_markup``): emphasis and links wrap
the words they formatted, while inline code, images, autolinks and raw inline HTML come back
verbatim. Link URLs are never translated.

A paragraph soft-wrapped over several lines is translated as one unit, because a sentence
cut at each line break translates badly, and the translation is wrapped again to the width of
the source paragraph, so a hard-wrapped file stays hard-wrapped (never breaking inside inline
code or a link target, nor before a word that would start a new block).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from violet_grpc.errors import FailedPrecondition
from violet_grpc.miner.documents._markup import (
    Close,
    Event,
    Fragment,
    FragmentBuilder,
    Marker,
    Open,
    Text,
    render,
    translate_fragments,
)
from violet_grpc.miner.engines.translate import LanguagePair, Translator

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

_FRONT_MATTER_END = ("---", "...")
_TASK = re.compile(r"^\[[ xX]\][ \t]+")
_PREFIX = re.compile(r"^[ \t]*(?:>[ \t]?)*[ \t]*(?:#{1,6}[ \t]+|[-*+][ \t]+|\d{1,9}[.)][ \t]+)?")
#: A line starting like this would open a new block instead of continuing a paragraph.
_BLOCK_START = re.compile(r"(?:#{1,6}|[-+*]|\d{1,9}[.)]|=+|-+|_+|\*+)$|>|<|```|~~~")
#: Stands for a space the wrapper may turn into a line break (decoded text has no NULs).
_SPACE = "\0"
_EMPHASIS = {"em_open": "i", "strong_open": "b", "s_open": "s"}
_CLOSERS = {"em_close", "strong_close", "s_close", "link_close"}


@dataclass
class _Slot:
    """A translatable unit and how to write its translated events back into the lines."""

    fragment: Fragment
    write: Callable[[list[Event]], None]


def translate_markdown(text: str, pair: LanguagePair, translator: Translator) -> str:
    """Translate a Markdown document, keeping its syntax (see the module doc)."""
    source = text.split("\n")
    lines: list[str | None] = list(source)
    skip = _front_matter_lines(source)
    tokens = _parser().parse("\n".join(source[skip:]))
    slots = _collect_slots(tokens, lines, skip)
    results = translate_fragments(translator, [slot.fragment for slot in slots], pair)
    for slot, events in zip(slots, results, strict=True):
        if slot.fragment.has_words:
            slot.write(_tidy(events))
    return "\n".join(line for line in lines if line is not None)


def _parser() -> MarkdownIt:
    """A CommonMark parser that leaves link destinations exactly as written."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        raise FailedPrecondition(
            "Markdown support needs markdown-it-py; run: pip install markdown-it-py",
            reason="ENGINE_NOT_INSTALLED",
            metadata={"package": "markdown-it-py", "install": "pip install markdown-it-py"},
        ) from None

    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    # The defaults percent-encode URLs and drop links with unusual schemes; a translation
    # must give back the URL the author wrote.
    md.normalizeLink = lambda url: url  # type: ignore[method-assign]
    md.normalizeLinkText = lambda link: link  # type: ignore[method-assign]
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


def _front_matter_lines(lines: Sequence[str]) -> int:
    """Number of lines of a leading YAML front-matter block (0 when none)."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in _FRONT_MATTER_END), None)
    return 0 if end is None else end + 1


def _collect_slots(tokens: Sequence[Token], lines: list[str | None], offset: int) -> list[_Slot]:
    slots: list[_Slot] = []
    table_rows: dict[int, list[Token]] = {}
    row_line: int | None = None
    in_table = False
    for i, token in enumerate(tokens):
        if token.type in ("table_open", "table_close"):
            in_table = token.type == "table_open"
        elif token.type == "tr_open" and token.map:
            row_line = token.map[0] + offset
            table_rows[row_line] = []
        elif token.type == "inline" and in_table and row_line is not None:
            table_rows[row_line].append(token)
        elif token.type == "inline" and token.map and i > 0:
            slots.append(_block_slot(token, tokens[i - 1], lines, token.map[0] + offset))
    for line_no, cells in table_rows.items():
        slots.extend(_row_slots(line_no, cells, lines))
    return slots


def _block_slot(token: Token, opener: Token, lines: list[str | None], start: int) -> _Slot:
    """A paragraph or heading starting at line ``start``.

    The first line keeps its prefix ("- ", "> ", "## "); a block spread over several lines is
    translated whole and wrapped again to its widest source line.
    """
    content = token.content.split("\n")
    first = lines[start] or ""
    at = first.rfind(content[0])
    fallback = _PREFIX.match(first)
    prefix = first[:at] if at >= 0 else (fallback.group() if fallback else "")
    suffix = first[at + len(content[0]) :] if at >= 0 and len(content) == 1 else ""
    children = list(token.children or [])
    task = _TASK.match(content[0]) if opener.type == "paragraph_open" and children else None
    if task and children[0].type == "text" and children[0].content.startswith(task.group()):
        prefix += task.group()
        children[0].content = children[0].content[len(task.group()) :]
    cont = _continuation(lines, start, content, prefix)
    fragment = _inline_fragment(children, cont)
    paragraph = opener.type == "paragraph_open"
    source_lines = [line or "" for line in lines[start : start + len(content)]]
    width = max(map(len, source_lines)) if len(content) > 1 else None

    def write(events: list[Event]) -> None:
        rendered = render(events, fragment.markers, _escape_breakable)
        rendered = _escape_start(rendered) if paragraph else rendered
        lines[start] = _wrap(prefix + rendered, width, cont) + suffix
        for extra in range(start + 1, start + len(content)):
            lines[extra] = None

    return _Slot(fragment, write)


def _continuation(lines: Sequence[str | None], start: int, content: Sequence[str], prefix: str) -> str:
    """What starts a continuation line of this block (for hard line breaks)."""
    if len(content) > 1 and start + 1 < len(lines):
        second = lines[start + 1] or ""
        at = second.rfind(content[1])
        if at >= 0:
            return second[:at]
    return re.sub(r"[^>\s]", " ", prefix)


def _row_slots(line_no: int, cells: Sequence[Token], lines: list[str | None]) -> list[_Slot]:
    """One slot per cell of a table row; each rewrites its own cell in the row's line."""
    line = lines[line_no] or ""
    quote = line[: len(line) - len(line.lstrip(" \t>"))]  # a table inside a block quote
    parts = re.split(r"(?<!\\)\|", line[len(quote) :])
    first = 1 if parts and not parts[0].strip() and len(parts) > 1 else 0
    slots: list[_Slot] = []
    fragments: dict[int, Fragment] = {}
    for index, cell in enumerate(cells[: max(0, len(parts) - first)]):
        position = first + index

        def write(events: list[Event], position: int = position) -> None:
            rendered = render(events, fragments[position].markers, _escape_cell)
            old = parts[position]
            core = old.strip()
            lead = old[: len(old) - len(old.lstrip())]
            parts[position] = lead + rendered + old[len(lead) + len(core) :]
            lines[line_no] = quote + "|".join(parts)

        fragments[position] = _inline_fragment(list(cell.children or []), " ")
        slots.append(_Slot(fragments[position], write))
    return slots


def _inline_fragment(children: Sequence[Token], cont: str) -> Fragment:
    """Markers for a block's inline tokens (see the module doc for what becomes what)."""
    builder = FragmentBuilder()
    i = 0
    while i < len(children):
        child = children[i]
        kind = child.type
        if kind == "text":
            builder.text(child.content)
        elif kind == "softbreak":
            builder.text(" ")
        elif kind == "hardbreak":
            builder.atom(Marker("\\\n" + cont))
        elif kind in _EMPHASIS:
            builder.open(_EMPHASIS[kind], Marker(child.markup, child.markup))
        elif kind == "link_open" and child.info == "auto":
            end = next((j for j in range(i, len(children)) if children[j].type == "link_close"), len(children))
            builder.atom(Marker("<" + "".join(c.content for c in children[i + 1 : end]) + ">"))
            i = end
        elif kind == "link_open":
            tail = "](" + _destination(child.attrs.get("href", "")) + _title(child.attrs.get("title")) + ")"
            builder.open("a", Marker("[", tail))
        elif kind in _CLOSERS:
            builder.close()
        else:
            builder.atom(Marker(_verbatim(child)))
        i += 1
    return builder.build()


def _verbatim(child: Token) -> str:
    """Source text for an inline item that is never translated."""
    if child.type == "code_inline":
        content, fence = child.content, child.markup
        # CommonMark strips one space from each side, and a backtick at an edge needs a space.
        spaced = content[:1] == content[-1:] == " " and content.strip()
        pad = " " if content[:1] == "`" or content[-1:] == "`" or spaced else ""
        return fence + pad + content + pad + fence
    if child.type == "image":
        src = _destination(str(child.attrs.get("src", "")))
        return "![" + child.content + "](" + src + _title(child.attrs.get("title")) + ")"
    return str(child.content)


def _destination(url: object) -> str:
    text = str(url)
    if re.search(r"[\s<>]", text) or text.count("(") != text.count(")") or not text:
        return "<" + text.replace("<", "%3C").replace(">", "%3E") + ">"
    return text


def _title(title: object) -> str:
    if not title:
        return ""
    return ' "' + str(title).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tidy(events: list[Event]) -> list[Event]:
    """Keep markers hugging their words, and drop empty ones.

    Engines often leave a space just inside an emphasis ("** rojos**"), which CommonMark
    then refuses to read as emphasis; the space moves outside the markers instead.
    """
    out: list[Event] = []
    for event in events:
        if isinstance(event, Text) and out and isinstance(out[-1], Open) and event.text[:1].isspace():
            core = event.text.lstrip()
            at = len(out)
            while at and isinstance(out[at - 1], Open):
                at -= 1
            out.insert(at, Text(event.text[: len(event.text) - len(core)]))
            if core:
                out.append(Text(core))
        elif isinstance(event, Close) and out and isinstance(out[-1], Open) and out[-1].index == event.index:
            out.pop()
        elif isinstance(event, Close) and out and isinstance(last := out[-1], Text) and last.text[-1:].isspace():
            out.pop()
            text, core = last.text, last.text.rstrip()
            out.extend([Text(core)] if core else [])
            out.extend([event, Text(text[len(core) :])])
        else:
            out.append(event)
    return out


def _wrap(text: str, width: int | None, cont: str) -> str:
    """Turn breakable spaces into spaces, or into line breaks that keep lines within ``width``."""
    chunks = text.split(_SPACE)
    if width is None:
        return " ".join(chunks)
    out = chunks[0]
    for chunk in chunks[1:]:
        line = len(out) - (out.rfind("\n") + 1)
        head = chunk.split("\n", 1)[0]
        fits = line + 1 + len(head) <= width
        out += " " + chunk if fits or not chunk or _BLOCK_START.match(chunk) else "\n" + cont + chunk
    return out


def _escape_breakable(text: str) -> str:
    return _escape(text).replace(" ", _SPACE)


def _escape(text: str) -> str:
    """Make translated text literal in Markdown (it must not become syntax)."""
    text = text.replace("\n", " ")
    text = re.sub(r"([\\`*\[\]])", r"\\\1", text)
    text = re.sub(r"<(?=[A-Za-z/!?])", r"\\<", text)  # only a '<' that could open a tag or autolink
    text = re.sub(r"(?<![^\W_])_|_(?![^\W_])", r"\\_", text)  # all but snake_case underscores
    text = re.sub(r"&(?=#?\w+;)", r"\\&", text)
    return text.replace("~~", "\\~\\~")


def _escape_cell(text: str) -> str:
    return _escape(text).replace("|", "\\|")


def _escape_start(rendered: str) -> str:
    """Escape a paragraph start that would read as a heading, quote, list item or rule."""
    if re.match(r"(?:#{1,6}|[+\-*])(?:[\s\0]|$)|>", rendered):
        return "\\" + rendered
    numbered = re.match(r"(\d{1,9})([.)])([\s\0]|$)", rendered)
    if numbered:
        return numbered.group(1) + "\\" + rendered[len(numbered.group(1)) :]
    return rendered
