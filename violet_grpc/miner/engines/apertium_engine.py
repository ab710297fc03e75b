"""Apertium: rule-based translation from Debian packages, the embedded default engine.

One ``apertium`` process translates a whole batch: segments travel as HTML, each in its own
``<div>``, because Apertium's HTML mode keeps markup in place and treats a block boundary
as a sentence boundary, so segments never bleed into each other and split back exactly.

Apertium's HTML mode has quirks that would damage documents, so markup is rewritten into a
form it handles well before it sees it, and restored byte for byte afterwards:

* inline elements with words in them become ``<b data-m="k">`` (Apertium moves these along
  with the words they wrap, even when word order changes);
* everything else inside a sentence (images, code, comments, empty or whitespace-only
  elements, a ``~``) becomes a comment ``<!--k-->``: Apertium drops ``~`` and whitespace-only
  elements, rewrites attribute quoting, and starts a new sentence after empty elements, but
  leaves comments alone without breaking the sentence;
* block elements split the document into separately translated blocks and are never sent.
"""
from __future__ import annotations

import html as htmllib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from violet_grpc.errors import DeadlineExceeded, FailedPrecondition, Internal
from violet_grpc.miner.engines.translate import (
    INLINE_ELEMENTS,
    VOID_ELEMENTS,
    WORD,
    HtmlToken,
    LanguagePair,
    Translator,
    check_pair,
    element_end,
    html_tokens,
    is_opaque,
)

INSTALL_HINT = "apt-get install apertium-eng-spa (or another apertium-xxx-yyy pair package)"
DEFAULT_MODES_DIR = Path("/usr/share/apertium/modes")

#: Apertium names languages by ISO 639-3 (some older pairs by 639-1); Violet speaks 639-1.
ISO639_3_TO_1 = {
    "afr": "af", "ara": "ar", "arg": "an", "bel": "be", "ben": "bn", "bre": "br", "bul": "bg",
    "cat": "ca", "ces": "cs", "cos": "co", "cym": "cy", "dan": "da", "deu": "de", "ell": "el",
    "eng": "en", "epo": "eo", "est": "et", "eus": "eu", "fao": "fo", "fin": "fi", "fra": "fr",
    "fry": "fy", "gla": "gd", "gle": "ga", "glg": "gl", "heb": "he", "hin": "hi", "hrv": "hr",
    "hbs": "sh", "hun": "hu", "hye": "hy", "ina": "ia", "ind": "id", "isl": "is", "ita": "it",
    "jpn": "ja", "kaz": "kk", "kir": "ky", "kor": "ko", "kur": "ku", "lat": "la", "lav": "lv",
    "lit": "lt", "ltz": "lb", "mkd": "mk", "mlt": "mt", "msa": "ms", "nld": "nl", "nno": "nn",
    "nob": "nb", "nor": "no", "oci": "oc", "pol": "pl", "por": "pt", "ron": "ro", "rus": "ru",
    "slk": "sk", "slv": "sl", "sme": "se", "spa": "es", "sqi": "sq", "srd": "sc", "srp": "sr",
    "swe": "sv", "tat": "tt", "tur": "tr", "ukr": "uk", "urd": "ur", "uzb": "uz", "zho": "zh",
}
_MODE = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})$")
_SEGMENT = re.compile(r'<div data-vs="(\d+)">(.*?)</div>', re.S)
_MARKER_OPEN = re.compile(r'<b data-m="(\d+)">')
_MARKER_ATOM = re.compile(r"<!--(\d+)-->")
_MASK = re.compile(r"<[^>]*>|&#?\w+;")
#: Most words Apertium may insert inside a split marker for it to be rejoined.
_MAX_SPLIT_GAP = 4


def iso639_1(code: str) -> str:
    """Violet's code for an Apertium language code (639-3 codes without a 639-1 code stay)."""
    return ISO639_3_TO_1.get(code, code)


@dataclass
class _Canonical:
    """A fragment rewritten for Apertium, with the original markup each marker stands for."""

    html: str
    opens: list[str]
    closes: list[str | None]


class ApertiumTranslator(Translator):
    """Translates with the ``apertium`` command and the pair packages installed beside it.

    Args:
        binary: The ``apertium`` executable (a name on PATH or a path).
        data_dir: Apertium's ``-d`` data directory, for pairs built outside the system tree.
        timeout_s: Seconds one batch may take; by default it grows with the batch size.
    """

    name = "apertium"
    device = "cpu"

    def __init__(
        self, binary: str = "apertium", *, data_dir: Path | None = None, timeout_s: float | None = None
    ) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.timeout_s = timeout_s

    # -- discovery ---------------------------------------------------------------------------

    def pairs(self) -> tuple[LanguagePair, ...]:
        """Installed directions, from ``apertium -l`` (or the modes directory as a fallback).

        Raises:
            FailedPrecondition: ``ENGINE_NOT_INSTALLED`` when the binary is missing.
        """
        return tuple(self._modes)

    @cached_property
    def _modes(self) -> dict[LanguagePair, str]:
        modes: dict[LanguagePair, str] = {}
        for mode in self._mode_names():
            match = _MODE.match(mode)
            if match:
                pair = LanguagePair(iso639_1(match.group(1)), iso639_1(match.group(2)))
                modes.setdefault(pair, mode)
        return modes

    def _mode_names(self) -> list[str]:
        self._require_binary()
        try:
            listing = subprocess.run(
                [self.binary, *self._dir_args(), "-l"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            listing = None
        if listing is not None and listing.returncode == 0 and listing.stdout.strip():
            return sorted(line.strip() for line in listing.stdout.splitlines() if line.strip())
        # Older apertium builds lack -l; the installed modes are files in the data directory.
        modes_dir = self.data_dir or DEFAULT_MODES_DIR
        return sorted(p.stem for p in modes_dir.glob("*.mode"))

    def _require_binary(self) -> str:
        path = shutil.which(self.binary)
        if path is None:
            raise FailedPrecondition(
                f"the Apertium binary {self.binary!r} is not installed; run: {INSTALL_HINT}",
                reason="ENGINE_NOT_INSTALLED",
                metadata={"engine": self.name, "binary": self.binary, "install": INSTALL_HINT},
            )
        return path

    def _dir_args(self) -> list[str]:
        return ["-d", str(self.data_dir)] if self.data_dir else []

    # -- translation -------------------------------------------------------------------------

    def translate_texts(self, texts: Sequence[str], pair: LanguagePair) -> list[str]:
        """Translate plain-text segments with one ``apertium`` process (see the module doc)."""
        check_pair(self, pair)
        escaped = [htmllib.escape(text, quote=False) for text in texts]
        return [htmllib.unescape(out) for out in self._translate_fragments(escaped, pair)]

    def translate_html(self, html: str, pair: LanguagePair) -> str:
        """Translate an HTML document or fragment, returning its markup byte for byte.

        Block elements and opaque elements (script, style, pre, code, ``translate="no"``...)
        are copied; the inline content between block boundaries is translated a block at a time.
        """
        check_pair(self, pair)
        pieces, blocks = _split_blocks(html_tokens(html))
        translated = self._translate_fragments(blocks, pair)
        return "".join(piece if isinstance(piece, str) else translated[piece] for piece in pieces)

    def _translate_fragments(self, fragments: Sequence[str], pair: LanguagePair) -> list[str]:
        """Translate inline-HTML fragments in one process; fragments without words are kept.

        Edge whitespace is peeled off before Apertium sees it (it shrinks and adds spaces
        there) and put back afterwards.
        """
        results = list(fragments)
        jobs = [(i, _peel(f)) for i, f in enumerate(fragments) if _has_words(f)]
        if not jobs:
            return results
        canons = [_canonicalize(html_tokens(core)) for _, (_, core, _) in jobs]
        document = "\n".join(f'<div data-vs="{j}">{canon.html}</div>' for j, canon in enumerate(canons))
        segments = self._split_segments(self._run(document, self._modes[pair]), len(jobs))
        for (i, (lead, _, trail)), canon, out in zip(jobs, canons, segments, strict=True):
            results[i] = lead + _restore(_fix_edges(canon.html, out), canon) + trail
        return results

    def _split_segments(self, output: str, count: int) -> list[str]:
        found = {int(m.group(1)): m.group(2) for m in _SEGMENT.finditer(output)}
        if sorted(found) != list(range(count)):
            raise Internal(
                "apertium lost segment boundaries in its output",
                reason="ENGINE_OUTPUT_MALFORMED",
                metadata={"engine": self.name, "expected": str(count), "found": str(len(found))},
            )
        return [found[j] for j in range(count)]

    def _run(self, document: str, mode: str) -> str:
        self._require_binary()
        timeout = self.timeout_s or 30 + len(document) / 2_000
        # A UTF-8 locale keeps Apertium's tokenizer from splitting non-ASCII letters.
        env = {**os.environ, "LC_ALL": "C.UTF-8"}
        try:
            done = subprocess.run(
                [self.binary, *self._dir_args(), "-u", "-f", "html", mode],
                input=document, capture_output=True, text=True, encoding="utf-8",
                timeout=timeout, env=env, check=False,
            )
        except subprocess.TimeoutExpired:
            raise DeadlineExceeded(
                f"apertium did not finish {len(document)} characters within {timeout:.0f} s",
                reason="ENGINE_TIMEOUT",
                metadata={"engine": self.name, "timeout_s": f"{timeout:.0f}"},
            ) from None
        if done.returncode != 0:
            raise Internal(
                f"apertium {mode} failed: {done.stderr.strip()[-500:]}",
                reason="ENGINE_FAILED",
                metadata={"engine": self.name, "mode": mode, "exit_code": str(done.returncode)},
            )
        return done.stdout


# -- markup handling -------------------------------------------------------------------------


def _has_words(fragment: str) -> bool:
    return any(t.kind == "text" and WORD.search(htmllib.unescape(t.raw)) for t in html_tokens(fragment))


def _is_block(token: HtmlToken) -> bool:
    return token.kind in ("start", "startend", "end") and token.name not in INLINE_ELEMENTS


def _split_blocks(tokens: list[HtmlToken]) -> tuple[list[str | int], list[str]]:
    """Cut a document at block boundaries into verbatim markup and inline fragments.

    Returns:
        ``pieces`` (strings to copy, ints indexing ``blocks``) and ``blocks`` to translate.
        An opaque block element (``<pre>``, ``<script>``, ``<div translate="no">``) is one
        verbatim piece with its content.
    """
    pieces: list[str | int] = []
    blocks: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not _is_block(token):
            current.append(token.raw)
            i += 1
            continue
        if current:
            pieces.append(len(blocks))
            blocks.append("".join(current))
            current.clear()
        last = i
        if token.kind == "start" and is_opaque(token) and token.name not in VOID_ELEMENTS:
            end = element_end(tokens, i)
            last = len(tokens) - 1 if end is None else end
        pieces.append("".join(t.raw for t in tokens[i : last + 1]))
        i = last + 1
    if current:
        pieces.append(len(blocks))
        blocks.append("".join(current))
    return pieces, blocks


def _canonicalize(tokens: list[HtmlToken]) -> _Canonical:
    """Rewrite an inline fragment into the markers Apertium handles (see the module doc)."""
    canon = _Canonical("", [], [])
    parts: list[str] = []
    closing: dict[int, int] = {}

    def atom(raw: str) -> None:
        parts.append(f"<!--{len(canon.opens)}-->")
        canon.opens.append(raw)
        canon.closes.append(None)

    i = 0
    while i < len(tokens):
        token = tokens[i]
        end = element_end(tokens, i) if token.kind == "start" and token.name not in VOID_ELEMENTS else None
        if token.kind == "text":
            for piece in re.split(r"(~)", token.raw):
                atom(piece) if piece == "~" else parts.append(piece)
        elif end is not None and not is_opaque(token) and _has_words("".join(t.raw for t in tokens[i + 1 : end])):
            closing[end] = len(canon.opens)
            parts.append(f'<b data-m="{len(canon.opens)}">')
            canon.opens.append(token.raw)
            canon.closes.append(tokens[end].raw)
        elif end is not None:
            atom("".join(t.raw for t in tokens[i : end + 1]))
            i = end
        elif i in closing:
            parts.append("</b>")
        else:
            atom(token.raw)
        i += 1
    canon.html = "".join(parts)
    return canon


def _restore(translated: str, canon: _Canonical) -> str:
    """Put the original markup back in place of the markers Apertium returned.

    Apertium may split one marked word group into two (a tag opened twice): each copy gets
    the original tags. Markers it lost are appended, so no image or code span disappears.
    """
    out: list[str] = []
    stack: list[int] = []
    seen: set[int] = set()
    for token in _rejoin_splits(html_tokens(translated)):
        opened = _MARKER_OPEN.fullmatch(token.raw)
        atom = _MARKER_ATOM.fullmatch(token.raw)
        if opened:
            k = int(opened.group(1))
            stack.append(k)
            seen.add(k)
            out.append(canon.opens[k])
        elif atom:
            seen.add(int(atom.group(1)))
            out.append(canon.opens[int(atom.group(1))])
        elif token.kind == "end" and token.name == "b" and stack:
            out.append(canon.closes[stack.pop()] or "")
        else:
            out.append(token.raw)
    out.extend(canon.closes[k] or "" for k in reversed(stack))
    out.extend(canon.opens[k] for k in range(len(canon.opens)) if k not in seen and canon.closes[k] is None)
    return "".join(out)


def _rejoin_splits(tokens: list[HtmlToken]) -> list[HtmlToken]:
    """Merge a marker Apertium split around a few inserted words back into one.

    Reordering carries each word's tags along, so "<a>documentation tests</a> chapter" comes
    back as "capítulo de <a>pruebas</a> de la <a>documentación</a>"; one link over
    "pruebas de la documentación" is what a translator would write.
    """
    marker: list[int | None] = []
    stack: list[int] = []
    for token in tokens:
        opened = _MARKER_OPEN.fullmatch(token.raw)
        if opened:
            stack.append(int(opened.group(1)))
            marker.append(None)
        elif token.kind == "end" and token.name == "b" and stack:
            marker.append(stack.pop())
        else:
            marker.append(None)
    drop: set[int] = set()
    for close, k in enumerate(marker):
        if k is None:
            continue
        after = close + 1
        while after < len(tokens) and tokens[after].kind == "text":
            after += 1
        gap = sum(len(t.raw.split()) for t in tokens[close + 1 : after])
        reopened = after < len(tokens) and _MARKER_OPEN.fullmatch(tokens[after].raw)
        if reopened and int(reopened.group(1)) == k and gap <= _MAX_SPLIT_GAP:
            drop.update((close, after))
    return [token for i, token in enumerate(tokens) if i not in drop]


def _peel(fragment: str) -> tuple[str, str, str]:
    """Split a fragment into leading whitespace, core and trailing whitespace."""
    core = fragment.strip()
    lead = fragment[: len(fragment) - len(fragment.lstrip())]
    return lead, core, fragment[len(lead) + len(core) :]


def _fix_edges(source: str, translated: str) -> str:
    """Undo Apertium's edge habits on a segment: added edge spaces, a capitalised first word.

    A dropped word ("He runs" -> "Corre") leaves its space behind, and every segment is
    capitalised as if it started a sentence, while segments are often mid-sentence pieces
    (a table cell, a run of a paragraph). ``source`` is the canonical fragment sent.
    """
    src, out = _mask(source), _mask(translated)
    result = list(translated)
    for first in (True, False):
        if not _edge_text(src, first)[:1].isspace():
            for index in _edge_spaces(out, first):
                result[index] = ""
    first_src, first_out = _first_letter(src), _first_letter(out)
    if first_src is not None and first_out is not None and src[first_src].islower():
        result[first_out] = result[first_out].lower()
    return "".join(result)


def _mask(html: str) -> str:
    """``html`` with markup and entities replaced by NULs, so indexes still line up."""
    return _MASK.sub(lambda m: "\0" * len(m.group()), html)


def _text_indexes(masked: str, first: bool) -> list[int]:
    indexes = [i for i, c in enumerate(masked) if c != "\0"]
    return indexes if first else indexes[::-1]


def _edge_text(masked: str, first: bool) -> str:
    return "".join(masked[i] for i in _text_indexes(masked, first)[:1])


def _edge_spaces(masked: str, first: bool) -> list[int]:
    """Indexes of the whitespace run at the start (or end) of the text, across markup."""
    run: list[int] = []
    for i in _text_indexes(masked, first):
        if not masked[i].isspace():
            break
        run.append(i)
    return run


def _first_letter(masked: str) -> int | None:
    return next((i for i, c in enumerate(masked) if c.isalpha()), None)
