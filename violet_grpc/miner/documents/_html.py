"""HTML translation: text nodes are translated, markup and non-text content are not.

The engine's ``translate_html`` keeps markup, and the stock engines already skip opaque
elements (script, style, code, pre, ``translate="no"``...). The content of those elements
is still swapped for placeholder comments before the engine sees it, so that a document's
code and scripts are guaranteed untouched whatever engine a miner plugs in.
"""
from __future__ import annotations

import secrets

from violet_grpc.errors import Internal
from violet_grpc.miner.engines.translate import (
    VOID_ELEMENTS,
    HtmlToken,
    LanguagePair,
    Translator,
    element_end,
    html_tokens,
    is_opaque,
)


def translate_html_document(text: str, pair: LanguagePair, translator: Translator) -> str:
    """Translate an HTML document's text, returning every tag and attribute as it was.

    Raises:
        Internal: ``ENGINE_OUTPUT_MALFORMED`` when the engine lost protected content.
    """
    nonce = secrets.token_hex(6)
    protected, kept = _protect(html_tokens(text), nonce)
    translated = translator.translate_html(protected, pair)
    for index, content in enumerate(kept):
        placeholder = _placeholder(nonce, index)
        if translated.count(placeholder) != 1:
            raise Internal(
                f"the {translator.name} engine lost protected content (code, script or style)",
                reason="ENGINE_OUTPUT_MALFORMED",
                metadata={"engine": translator.name},
            )
        translated = translated.replace(placeholder, content)
    return translated


def _placeholder(nonce: str, index: int) -> str:
    return f"<!--violet-keep-{nonce}-{index}-->"


def _protect(tokens: list[HtmlToken], nonce: str) -> tuple[str, list[str]]:
    """Replace the content of opaque elements by placeholders; their tags stay in place."""
    parts: list[str] = []
    kept: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        parts.append(token.raw)
        if is_opaque(token) and token.name not in VOID_ELEMENTS:
            end = element_end(tokens, i)
            inner_end = len(tokens) if end is None else end
            content = "".join(t.raw for t in tokens[i + 1 : inner_end])
            if content:
                parts.append(_placeholder(nonce, len(kept)))
                kept.append(content)
            i = inner_end
            continue
        i += 1
    return "".join(parts), kept
