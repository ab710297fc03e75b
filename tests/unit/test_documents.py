"""Document translation: format detection, structure preservation and errors.

Two kinds of engine are used. The real Apertium (English -> Spanish) shows documents come
back translated and intact. Two tiny deterministic engines isolate the format code: ``Echo``
returns text unchanged, so a document must round-trip byte for byte, and ``Mirror``
spells words backwards, so the tests can see exactly which parts of a document were sent to
the engine.
"""
from __future__ import annotations

import codecs
import io
import random
import re
import shutil
import zipfile
from collections.abc import Sequence

import docx
import pytest
from docx.shared import Pt
from hypothesis import given, settings
from hypothesis import strategies as st

from violet_grpc.errors import InvalidArgument, ResourceExhausted
from violet_grpc.miner import documents
from violet_grpc.miner.documents import DocumentFormat, detect_format, translate_document
from violet_grpc.miner.engines.apertium_engine import ApertiumTranslator
from violet_grpc.miner.engines.translate import LanguagePair, Translator, html_tokens

EN_ES = LanguagePair("en", "es")
MD, HTML, SRT, TXT, DOCX = (
    DocumentFormat.MARKDOWN, DocumentFormat.HTML, DocumentFormat.SRT, DocumentFormat.TXT, DocumentFormat.DOCX,
)

needs_apertium = pytest.mark.skipif(
    shutil.which("apertium") is None, reason="apertium is not installed (apt-get install -y apertium-eng-spa)"
)


class Echo(Translator):
    """Returns every segment unchanged."""

    name = "echo"
    device = "cpu"

    def pairs(self) -> tuple[LanguagePair, ...]:
        return (EN_ES,)

    def translate_texts(self, texts: Sequence[str], pair: LanguagePair) -> list[str]:
        return list(texts)


class Mirror(Echo):
    """Spells every word backwards, so what was translated is visible ("red" -> "der")."""

    name = "mirror"

    def translate_texts(self, texts: Sequence[str], pair: LanguagePair) -> list[str]:
        return [re.sub(r"\w+", lambda m: m.group()[::-1], text) for text in texts]


@pytest.fixture(scope="module")
def apertium() -> ApertiumTranslator:
    translator = ApertiumTranslator()
    if EN_ES not in translator.pairs():
        pytest.skip("the apertium eng-spa pair is not installed (apt-get install -y apertium-eng-spa)")
    return translator


# -- samples ------------------------------------------------------------------------------------

MARKDOWN_DOC = """---
title: the front matter
---
# The red house ##

I like **red** cars, *small* dogs and ~~old~~ [the big dog](http://x.y/the-dog "The dog").\\
Run `make gen` before you commit.\\
Then read ![the logo](img/logo.png) and <https://example.com/the-page>.

- The first item
- [ ] the open task
  1. a nested number

> A quoted line.

| Name | Colour |
|------|--------|
| The cat | *black* and white |

Setext heading
==============

```python
print("the house is red")
```

    indented code stays

<div align="center">raw html block</div>

[ref]: http://example.com/ref
"""

HTML_DOC = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>The red house</title>
<style>p { color: red; } /* the style */</style></head>
<body class='page' data-x="a>b">
  <h1 id=top>Welcome to the house</h1>
  <p>I like <b>red</b> cars &amp; <a href="http://x.y/?a=1&amp;b=2" title="the dog">the big dog</a>.</p>
  <p>Run <code>make the build</code> then <kbd>Ctrl</kbd>.<img src="cat.png" alt="the cat"><br/>Next line.</p>
  <pre>the preformatted text</pre>
  <p translate="no">the brand name</p>
  <!-- the comment -->
  <script>var dog = "the dog";</script>
</body></html>
"""

SRT_DOC = (
    "1\r\n00:00:01,000 --> 00:00:04,000\r\n<i>The cat is black</i>\r\nand the dog is white.\r\n\r\n"
    "2\r\n00:00:05,000 --> 00:00:07,500 X1:40 X2:600\r\n{\\an8}Hello, my friend!\r\n\r\n"
    "3\r\n01:02:03,004 --> 01:02:05,006\r\n<font color=\"#ffff00\">The house</font> & the car\r\n"
)

GARBAGE = random.Random(7).randbytes(2048)
TXT_DOC = "Hello world.\r\n\r\n    The cat is black.\r\nthe dog\r\n\r\n* a list item\r\n"


def docx_bytes() -> bytes:
    """A heading, a paragraph with a bold run, a styled list item, a table and a header."""
    document = docx.Document()
    document.add_heading("The red house", level=1)
    paragraph = document.add_paragraph("I like ")
    paragraph.add_run("red").bold = True
    paragraph.add_run(" cars.")
    document.add_paragraph("The dog is big.", style="List Bullet")
    emphasis = document.add_paragraph().add_run("Hello world")
    emphasis.italic = True
    emphasis.font.size = Pt(14)
    document.add_table(rows=1, cols=2).rows[0].cells[0].text = "The black cat"
    document.sections[0].header.paragraphs[0].text = "The header"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def runs(data: bytes) -> list[tuple[str, list[tuple[str, bool | None, bool | None]]]]:
    """(style, [(text, bold, italic)]) for each body paragraph."""
    document = docx.Document(io.BytesIO(data))
    return [(p.style.name, [(r.text, r.bold, r.italic) for r in p.runs]) for p in document.paragraphs]


# -- round trips through an engine that changes nothing -------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        (TXT, TXT_DOC),
        (TXT, "single line without newline"),
        (MD, MARKDOWN_DOC),
        (MD, "Just one paragraph.\n"),
        (HTML, HTML_DOC),
        (HTML, "<p>fragment with <em>emphasis</em></p>"),
        (SRT, SRT_DOC),
        (SRT, SRT_DOC.replace("\r\n", "\n")),
    ],
)
def test_text_formats_round_trip_byte_for_byte(fmt: DocumentFormat, text: str) -> None:
    assert translate_document(text.encode(), fmt, EN_ES, Echo()) == text.encode()


@pytest.mark.parametrize("bom", [codecs.BOM_UTF8, codecs.BOM_UTF16_LE])
def test_encoding_and_byte_order_mark_are_kept(bom: bytes) -> None:
    data = bom + "Hello café.\r\n".encode("utf-8" if bom == codecs.BOM_UTF8 else "utf-16-le")
    assert translate_document(data, TXT, EN_ES, Echo()) == data


def test_legacy_single_byte_text_comes_back_as_utf8() -> None:
    assert translate_document("Café crème".encode("cp1252"), TXT, EN_ES, Echo()) == "Café crème".encode()


def test_docx_round_trip_keeps_paragraphs_styles_and_runs() -> None:
    data = docx_bytes()
    assert runs(translate_document(data, DOCX, EN_ES, Echo())) == runs(data)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/!-?=\"'& ;#apbr\nscript")), max_size=40))
def test_html_lexer_reproduces_any_input(text: str) -> None:
    assert "".join(token.raw for token in html_tokens(text)) == text


# -- what is sent to the engine, and what is not ---------------------------------------------------


def test_markdown_translates_prose_but_not_code_urls_or_syntax() -> None:
    out = translate_document(MARKDOWN_DOC.encode(), MD, EN_ES, Mirror()).decode()
    for kept in (
        "title: the front matter", "`make gen`", "http://x.y/the-dog", '"The dog"', "img/logo.png",
        "<https://example.com/the-page>", 'print("the house is red")', "    indented code stays",
        '<div align="center">raw html block</div>', "[ref]: http://example.com/ref", "|------|--------|",
        "==============",
    ):
        assert kept in out
    for translated in (
        "# ehT der esuoh ##", "**der**", "*llams*", "~~dlo~~", "[eht gib god](", "- [ ] eht nepo ksat",
        "  1. a detsen rebmun", "> A detouq enil.", "| ehT tac | *kcalb* dna etihw |", "txeteS gnidaeh",
    ):
        assert translated in out


def test_markdown_soft_wrapped_paragraph_is_translated_whole_and_wrapped_again() -> None:
    class Counting(Echo):
        def translate_texts(self, texts: Sequence[str], pair: LanguagePair) -> list[str]:
            self.seen = list(texts)
            return [re.sub(r"\w+", lambda m: m.group()[::-1], text) for text in texts]

    engine = Counting()
    out = translate_document(b"> first part\n> second part\n\nnext\n", MD, EN_ES, engine)
    assert "first part second part" in engine.seen
    assert out == b"> tsrif trap\n> dnoces trap\n\ntxen\n"


def test_markdown_wrapping_never_starts_a_new_block() -> None:
    class Tricky(Echo):
        def translate_texts(self, texts: Sequence[str], pair: LanguagePair) -> list[str]:
            return ["alpha - beta 1. gamma # delta > epsilon <div> zeta" for _ in texts]

    out = translate_document(b"some words\nmore words\n", MD, EN_ES, Tricky()).decode()
    assert len(out.splitlines()) > 1
    assert not any(re.match(r"(-|1\.|#|>|<)", line) for line in out.splitlines())
    from markdown_it import MarkdownIt

    assert [t.type for t in MarkdownIt("commonmark").parse(out)] == ["paragraph_open", "inline", "paragraph_close"]


def test_markdown_escapes_translated_text_that_looks_like_syntax() -> None:
    class Starry(Echo):
        def translate_texts(self, texts: Sequence[str], pair: LanguagePair) -> list[str]:
            return ["# 2 * 3 [x] `y`" for _ in texts]

    out = translate_document(b"Some text.\n", MD, EN_ES, Starry()).decode()
    assert out == "\\# 2 \\* 3 \\[x\\] \\`y\\`\n"


def test_html_translates_text_nodes_only() -> None:
    out = translate_document(HTML_DOC.encode(), HTML, EN_ES, Mirror()).decode()
    for kept in (
        "<code>make the build</code>", "<kbd>Ctrl</kbd>", "<pre>the preformatted text</pre>",
        '<p translate="no">the brand name</p>', 'var dog = "the dog";', "/* the style */",
        "<!-- the comment -->", 'title="the dog"', 'alt="the cat"', 'href="http://x.y/?a=1&amp;b=2"',
    ):
        assert kept in out
    assert "<title>ehT der esuoh</title>" in out and "<b>der</b> srac &amp; " in out


def test_srt_keeps_numbers_timings_and_tags() -> None:
    out = translate_document(SRT_DOC.encode(), SRT, EN_ES, Mirror()).decode()
    assert out.splitlines()[:2] == ["1", "00:00:01,000 --> 00:00:04,000"]
    assert "00:00:05,000 --> 00:00:07,500 X1:40 X2:600\r\n{\\an8}olleH, ym dneirf!" in out
    assert '<font color="#ffff00">ehT esuoh</font> & eht rac' in out
    assert out.count("\r\n") == SRT_DOC.count("\r\n")


def test_docx_translates_headers_tables_and_keeps_formatting() -> None:
    out = translate_document(docx_bytes(), DOCX, EN_ES, Mirror())
    document = docx.Document(io.BytesIO(out))
    assert runs(out)[1] == ("Normal", [("I ekil ", None, None), ("der", True, None), (" srac.", None, None)])
    assert document.tables[0].rows[0].cells[0].text == "ehT kcalb tac"
    assert document.sections[0].header.paragraphs[0].text == "ehT redaeh"
    assert document.paragraphs[3].runs[0].font.size == Pt(14)


# -- the real engine -------------------------------------------------------------------------------


@needs_apertium
def test_html_with_apertium_keeps_tags_and_attributes(apertium: ApertiumTranslator) -> None:
    out = translate_document(HTML_DOC.encode(), HTML, EN_ES, apertium).decode()
    markup = sorted(t.raw for t in html_tokens(HTML_DOC) if t.kind != "text")
    assert sorted(t.raw for t in html_tokens(out) if t.kind != "text") == markup
    assert "casa" in out and "perro" in out
    assert 'var dog = "the dog";' in out and "<pre>the preformatted text</pre>" in out


@needs_apertium
def test_srt_with_apertium_keeps_indices_and_timings_exactly(apertium: ApertiumTranslator) -> None:
    out = translate_document(SRT_DOC.encode(), SRT, EN_ES, apertium).decode()
    source_lines, out_lines = SRT_DOC.split("\r\n"), out.split("\r\n")
    assert len(out_lines) == len(source_lines)
    for index in (0, 1, 5, 6, 9, 10):
        assert out_lines[index] == source_lines[index]
    assert "gato" in out and "negro" in out and out_lines[2].startswith("<i>") and out_lines[2].endswith("</i>")
    assert out_lines[7].startswith("{\\an8}")


@needs_apertium
def test_docx_with_apertium_keeps_paragraphs_styles_and_bold(apertium: ApertiumTranslator) -> None:
    source = runs(docx_bytes())
    out = runs(translate_document(docx_bytes(), DOCX, EN_ES, apertium))
    assert [style for style, _ in out] == [style for style, _ in source]
    heading, body = out[0], out[1]
    assert heading[0] == "Heading 1" and "casa" in "".join(text for text, _, _ in heading[1])
    assert [text for text, bold, _ in body[1] if bold] == ["rojos"]
    assert "coches" in "".join(text for text, _, _ in body[1])


@needs_apertium
def test_markdown_with_apertium_leaves_code_untouched(apertium: ApertiumTranslator) -> None:
    out = translate_document(MARKDOWN_DOC.encode(), MD, EN_ES, apertium).decode()
    assert '```python\nprint("the house is red")\n```' in out
    assert "`make gen`" in out and "http://x.y/the-dog" in out
    assert "# Bienvenido" not in out and "casa roja" in out and "**rojos**" in out


@needs_apertium
def test_plain_text_with_apertium_keeps_lines(apertium: ApertiumTranslator) -> None:
    out = translate_document(TXT_DOC.encode(), TXT, EN_ES, apertium).decode()
    assert out.split("\r\n")[:4] == ["Hola Mundo.", "", "    El gato es negro.", "el perro"]


# -- errors -----------------------------------------------------------------------------------------


def test_unsupported_pair_is_refused_with_the_supported_list() -> None:
    with pytest.raises(InvalidArgument) as caught:
        translate_document(b"The cat.", TXT, LanguagePair("en", "ja"), Echo())
    assert caught.value.reason == "UNSUPPORTED_LANGUAGE_PAIR"
    assert caught.value.metadata["supported_pairs"] == "en-es"


@pytest.mark.parametrize(
    ("data", "fmt"),
    [(b"", TXT), (b"  \r\n\t", MD), (codecs.BOM_UTF8 + b"\n\n", HTML), (b"", DOCX)],
)
def test_empty_documents_are_refused(data: bytes, fmt: DocumentFormat) -> None:
    with pytest.raises(InvalidArgument) as caught:
        translate_document(data, fmt, EN_ES, Echo())
    assert caught.value.reason == "EMPTY_DOCUMENT"


def test_docx_without_text_is_empty() -> None:
    out = io.BytesIO()
    docx.Document().save(out)
    with pytest.raises(InvalidArgument) as caught:
        translate_document(out.getvalue(), DOCX, EN_ES, Echo())
    assert caught.value.reason == "EMPTY_DOCUMENT"


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (GARBAGE, TXT),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", MD),
        (b"not a zip file at all", DOCX),
        (b"PK\x03\x04 truncated zip", DOCX),
        (b"just some text, no cue timings", SRT),
    ],
)
def test_malformed_documents_are_refused(data: bytes, fmt: DocumentFormat) -> None:
    with pytest.raises(InvalidArgument) as caught:
        translate_document(data, fmt, EN_ES, Echo())
    assert caught.value.reason == "MALFORMED_DOCUMENT"


def test_a_zip_that_is_not_a_word_document_is_malformed() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("content.xml", "<x/>")
    with pytest.raises(InvalidArgument) as caught:
        translate_document(out.getvalue(), DOCX, EN_ES, Echo())
    assert caught.value.reason == "MALFORMED_DOCUMENT"


def test_oversized_documents_are_refused() -> None:
    with pytest.raises(ResourceExhausted) as caught:
        translate_document(b"The cat. " * 100, TXT, EN_ES, Echo(), max_bytes=100)
    assert caught.value.reason == "DOCUMENT_TOO_LARGE"
    assert caught.value.metadata["limit_bytes"] == "100"


def test_an_unknown_format_value_is_unsupported() -> None:
    with pytest.raises(InvalidArgument) as caught:
        translate_document(b"%PDF-1.7", "pdf", EN_ES, Echo())  # type: ignore[arg-type]
    assert caught.value.reason == "UNSUPPORTED_FORMAT"


# -- detection and metadata ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type", "data", "expected"),
    [
        ("notes.TXT", None, b"x", TXT),
        ("README.md", None, b"plain", MD),
        ("page.htm", "text/plain", b"x", HTML),
        ("movie.srt", None, b"x", SRT),
        ("letter.docx", None, b"x", DOCX),
        (None, "text/markdown; charset=utf-8", b"x", MD),
        (None, "application/x-subrip", b"x", SRT),
        (None, "text/html", b"x", HTML),
        (None, None, b"1\n00:00:01,000 --> 00:00:02,000\nHi\n", SRT),
        (None, "application/octet-stream", b"<!DOCTYPE html><p>Hi</p>", HTML),
        (None, None, b"# Title\n\nSome text.\n", MD),
        (None, None, b"See [the docs](http://x.y) for more.", MD),
        (None, None, b"Just a plain sentence.\nAnd another.", TXT),
        ("upload", None, docx_bytes(), DOCX),
    ],
)
def test_detect_format(filename: str | None, content_type: str | None, data: bytes, expected: DocumentFormat) -> None:
    assert detect_format(filename, content_type, data) == expected


@pytest.mark.parametrize(
    ("filename", "content_type", "data"),
    [
        ("report.pdf", None, b"%PDF-1.7"),
        (None, "application/octet-stream", b"\x00\x01\x02binary"),
        (None, None, b"PK\x03\x04garbage"),
    ],
)
def test_detect_format_refuses_what_it_cannot_translate(
    filename: str | None, content_type: str | None, data: bytes
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        detect_format(filename, content_type, data)
    assert caught.value.reason == "UNSUPPORTED_FORMAT"
    assert caught.value.metadata["supported_formats"] == "txt,md,html,srt,docx"


@pytest.mark.parametrize(
    ("fmt", "mime", "extension"),
    [
        (TXT, "text/plain; charset=utf-8", ".txt"),
        (MD, "text/markdown; charset=utf-8", ".md"),
        (HTML, "text/html; charset=utf-8", ".html"),
        (SRT, "application/x-subrip", ".srt"),
        (DOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    ],
)
def test_content_type_and_extension(fmt: DocumentFormat, mime: str, extension: str) -> None:
    assert documents.content_type(fmt) == mime
    assert documents.file_extension(fmt) == extension
    assert detect_format("x" + extension, None, b"") == fmt


def test_supported_extensions_match_the_capabilities_field() -> None:
    assert documents.supported_extensions() == ["txt", "md", "html", "srt", "docx"]
