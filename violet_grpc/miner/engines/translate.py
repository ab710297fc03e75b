"""Translation engines: the language-pair type, the ``Translator`` protocol and HTML helpers.

Every engine (Apertium, CTranslate2, ...) translates batches of plain-text segments; document
formats are layered on top of that by ``violet_grpc.miner.documents``. HTML is the common
currency for structured text: a format expresses its inline markup as HTML tags, the engine
translates the text around them, and the markup comes back untouched. Engines that understand
markup (Apertium) override ``translate_html``; the rest inherit the text-node default here.

The small HTML lexer lives here too, because both the engines and the documents layer must
reproduce markup byte for byte, and one lexer means one set of edge cases.
"""
from __future__ import annotations

import html as htmllib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from violet_grpc.errors import InvalidArgument

_CODE = re.compile(r"^[a-z]{2,3}$")
#: A character that makes a stretch of text worth sending to an engine.
WORD = re.compile(r"\w")

#: Elements whose content is never translated: program text, preformatted text, markup in
#: other vocabularies. ``translate="no"`` and ``class="notranslate"`` mark more (HTML5 and the
#: convention browsers' translators follow).
OPAQUE_ELEMENTS = frozenset(
    {"script", "style", "code", "pre", "kbd", "samp", "var", "textarea", "svg", "math", "template"}
)
#: Elements that never have content or an end tag.
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
#: Phrasing elements: they sit inside a sentence, so text on both sides belongs together.
INLINE_ELEMENTS = frozenset(
    {
        "a", "abbr", "b", "bdi", "bdo", "big", "br", "cite", "code", "data", "del", "dfn", "em",
        "font", "i", "img", "ins", "kbd", "mark", "q", "s", "samp", "small", "span", "strike",
        "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
    }
)


@dataclass(frozen=True)
class LanguagePair:
    """A translation direction between two ISO 639-1 codes (639-2/3 where 639-1 has none).

    Raises:
        InvalidArgument: ``INVALID_LANGUAGE_CODE`` when a code is not 2-3 lowercase letters, so
            a typo fails at the edge rather than as an unsupported pair deep in an engine.
    """

    source: str
    target: str

    def __post_init__(self) -> None:
        for role, code in (("source", self.source), ("target", self.target)):
            if not _CODE.match(code):
                raise InvalidArgument(
                    f"{role} language {code!r} is not an ISO 639-1 code such as 'en' or 'es'",
                    reason="INVALID_LANGUAGE_CODE",
                    metadata={"field": f"{role}_language", "value": code},
                )

    def __str__(self) -> str:
        return f"{self.source}-{self.target}"

    @classmethod
    def parse(cls, text: str) -> LanguagePair:
        """Parse ``"en-es"`` (case and surrounding space ignored) into a pair.

        Raises:
            InvalidArgument: ``INVALID_LANGUAGE_PAIR`` when the text is not ``xx-yy``.
        """
        source, sep, target = text.strip().lower().partition("-")
        if not sep:
            raise InvalidArgument(
                f"language pair {text!r} is not of the form 'en-es'",
                reason="INVALID_LANGUAGE_PAIR",
                metadata={"value": text},
            )
        return cls(source, target)


class Translator(Protocol):
    """A machine-translation engine.

    Attributes:
        name: Short engine name reported to clients ("apertium", "ctranslate2").
        device: Where it runs ("cpu", "cuda").
    """

    name: str
    device: str

    def pairs(self) -> tuple[LanguagePair, ...]:
        """The directions this engine can translate, in a stable order."""
        ...

    def translate_texts(self, texts: Sequence[str], pair: LanguagePair) -> list[str]:
        """Translate plain-text segments in one batch.

        Args:
            texts: Segments (sentences, paragraphs, lines); order is kept in the result.
            pair: The direction; must be one of ``pairs()``.

        Returns:
            One translation per segment; segments without words come back unchanged, so an
            empty string stays empty.
        """
        ...

    def translate_html(self, html: str, pair: LanguagePair) -> str:
        """Translate the text of an HTML document or fragment, keeping every tag and attribute.

        The default translates each text node on its own through ``translate_texts``; engines
        that move inline tags along with the words they wrap should override it.
        """
        return translate_html_by_text_nodes(self, html, pair)


def check_pair(translator: Translator, pair: LanguagePair) -> None:
    """Refuse a direction the engine does not serve, naming the ones it does.

    Raises:
        InvalidArgument: ``UNSUPPORTED_LANGUAGE_PAIR`` with ``supported_pairs`` in metadata.
    """
    supported = translator.pairs()
    if pair not in supported:
        listed = ",".join(str(p) for p in supported)
        raise InvalidArgument(
            f"{translator.name} cannot translate {pair}; supported pairs: {listed or 'none'}",
            reason="UNSUPPORTED_LANGUAGE_PAIR",
            metadata={"pair": str(pair), "supported_pairs": listed, "engine": translator.name},
        )


def keep_edges(source: str, translated: str) -> str:
    """Give a translation the source's surrounding whitespace and initial lower case.

    Engines trim or add edge spaces and capitalise the first word of every segment, but a
    segment is often the middle of a sentence (a table cell, a run, a line of a cue) whose
    layout must survive.
    """
    core = translated.strip()
    lead = source[: len(source) - len(source.lstrip())]
    trail = source[len(source.rstrip()) :]
    return lead + match_initial_case(source, core) + trail


def match_initial_case(source: str, translated: str) -> str:
    """Lower-case the first letter of ``translated`` when the source's first letter is lower."""
    src = next((c for c in source if c.isalpha()), "")
    index = next((i for i, c in enumerate(translated) if c.isalpha()), None)
    if index is None or not src.islower() or not translated[index].isupper():
        return translated
    return translated[:index] + translated[index].lower() + translated[index + 1 :]


# -- HTML lexing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HtmlToken:
    """One lexical piece of HTML with its exact source text.

    Attributes:
        kind: ``text``, ``start``, ``end``, ``startend`` (``<br/>``), ``comment``, ``decl``
            (doctype, CDATA) or ``pi``.
        raw: The source characters, so joining every ``raw`` gives the input back.
        name: Lower-case tag name for tags, else "".
        attrs: Attributes of start tags.
    """

    kind: str
    raw: str
    name: str = ""
    attrs: tuple[tuple[str, str | None], ...] = field(default=())

    def attr(self, key: str) -> str | None:
        """Value of attribute ``key`` (``None`` when absent or valueless)."""
        return next((v for k, v in self.attrs if k == key), None)


_MARKUP = re.compile(
    r"""
      <!--.*?(?:-->|\Z)                     # comment (an unclosed one runs to the end)
    | <!\[CDATA\[.*?(?:\]\]>|\Z)             # CDATA section
    | <![^>]*>                               # doctype and other declarations
    | <\?[^>]*>                              # processing instruction
    | </[A-Za-z][^>]*>                       # end tag
    | <[A-Za-z](?:[^>"']|"[^"]*"|'[^']*')*>  # start tag; quoted values may hold '>'
    """,
    re.S | re.X,
)
_NAME = re.compile(r"</?([A-Za-z][^\s/>]*)")
_ATTR = re.compile(r"""([^\s"'=<>/]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")
#: Elements whose content is raw text up to their end tag, as browsers parse them.
_RAW_TEXT = frozenset({"script", "style", "textarea", "title"})


def html_tokens(html: str) -> list[HtmlToken]:
    """Split HTML into tokens whose ``raw`` texts concatenate back to ``html`` exactly.

    A regular-expression lexer rather than ``html.parser``: the parser reports positions,
    not source text, and loses characters around malformed references; exact source text is
    what lets a translated document keep its markup byte for byte. A ``<`` that starts no
    tag is text, as in browsers.
    """
    tokens: list[HtmlToken] = []
    pos = text_start = 0
    while (pos := html.find("<", pos)) != -1:
        match = _MARKUP.match(html, pos)
        if match is None:
            pos += 1
            continue
        if pos > text_start:
            tokens.append(HtmlToken("text", html[text_start:pos]))
        token = _markup_token(match.group())
        tokens.append(token)
        pos = text_start = match.end()
        if token.kind == "start" and token.name in _RAW_TEXT:
            close = re.compile(rf"</{token.name}\b", re.I).search(html, pos)
            pos = close.start() if close else len(html)
            if pos > text_start:
                tokens.append(HtmlToken("text", html[text_start:pos]))
            text_start = pos
    if text_start < len(html):
        tokens.append(HtmlToken("text", html[text_start:]))
    return tokens


def _markup_token(raw: str) -> HtmlToken:
    if raw.startswith("<!--"):
        return HtmlToken("comment", raw)
    if raw.startswith("<!"):
        return HtmlToken("decl", raw)
    if raw.startswith("<?"):
        return HtmlToken("pi", raw)
    name_match = _NAME.match(raw)
    name = name_match.group(1).lower() if name_match else ""
    if raw.startswith("</"):
        return HtmlToken("end", raw, name)
    attrs = tuple((key.lower(), _attr_value(value)) for key, value in _ATTR.findall(raw[len(name) + 1 : -1]))
    kind = "startend" if raw.endswith("/>") else "start"
    return HtmlToken(kind, raw, name, attrs)


def _attr_value(value: str) -> str | None:
    if not value:
        return None
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        value = value[1:-1]
    return htmllib.unescape(value)


def is_opaque(token: HtmlToken) -> bool:
    """Whether a start tag opens an element whose content must not be translated."""
    if token.kind != "start":
        return False
    classes = (token.attr("class") or "").split()
    return token.name in OPAQUE_ELEMENTS or token.attr("translate") == "no" or "notranslate" in classes


def element_end(tokens: Sequence[HtmlToken], start: int) -> int | None:
    """Index of the end tag closing the element opened at ``tokens[start]``, if any."""
    name, depth = tokens[start].name, 0
    for i in range(start, len(tokens)):
        token = tokens[i]
        if token.kind == "start" and token.name == name:
            depth += 1
        elif token.kind == "end" and token.name == name:
            depth -= 1
            if depth == 0:
                return i
    return None


def translatable_text_nodes(tokens: Sequence[HtmlToken]) -> list[int]:
    """Indexes of text tokens outside opaque elements that contain at least one word."""
    found: list[int] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if is_opaque(token) and token.name not in VOID_ELEMENTS:
            end = element_end(tokens, i)
            if end is None:  # unclosed opaque element: protect everything after it
                break
            i = end + 1
            continue
        if token.kind == "text" and WORD.search(htmllib.unescape(token.raw)):
            found.append(i)
        i += 1
    return found


def translate_html_by_text_nodes(translator: Translator, html: str, pair: LanguagePair) -> str:
    """Translate every text node of ``html`` separately, in one batch, leaving markup as is.

    Text inside opaque elements stays untouched; entities are decoded for the engine and the
    translation is escaped again, so ``&amp;`` stays a literal ampersand.
    """
    tokens = html_tokens(html)
    indexes = translatable_text_nodes(tokens)
    sources = [htmllib.unescape(tokens[i].raw) for i in indexes]
    translations = translator.translate_texts(sources, pair) if sources else []
    raws = [t.raw for t in tokens]
    for i, source, translated in zip(indexes, sources, translations, strict=True):
        if translated != source:  # an untouched node keeps its entities as written
            raws[i] = htmllib.escape(keep_edges(source, translated), quote=False)
    return "".join(raws)
