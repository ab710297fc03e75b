"""The Apertium engine against the real ``apertium`` binary and its eng-spa pair.

Install with: apt-get install -y apertium-eng-spa
"""
from __future__ import annotations

import shutil

import pytest

from violet_grpc.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument
from violet_grpc.miner.engines.apertium_engine import ApertiumTranslator, iso639_1
from violet_grpc.miner.engines.translate import LanguagePair, check_pair, html_tokens

EN_ES = LanguagePair("en", "es")

needs_apertium = pytest.mark.skipif(
    shutil.which("apertium") is None, reason="apertium is not installed (apt-get install -y apertium-eng-spa)"
)


@pytest.fixture(scope="module")
def apertium() -> ApertiumTranslator:
    translator = ApertiumTranslator()
    if EN_ES not in translator.pairs():
        pytest.skip("the apertium eng-spa pair is not installed (apt-get install -y apertium-eng-spa)")
    return translator


@pytest.mark.parametrize(
    ("apertium_code", "iso"),
    [("eng", "en"), ("spa", "es"), ("cat", "ca"), ("fra", "fr"), ("por", "pt"), ("ast", "ast")],
)
def test_apertium_codes_map_to_iso_639_1(apertium_code: str, iso: str) -> None:
    assert iso639_1(apertium_code) == iso


def test_missing_binary_says_how_to_install() -> None:
    translator = ApertiumTranslator(binary="apertium-not-installed-here")
    with pytest.raises(FailedPrecondition) as caught:
        translator.pairs()
    assert "apt-get install apertium-eng-spa" in caught.value.message
    assert caught.value.reason == "ENGINE_NOT_INSTALLED"


@needs_apertium
def test_discovers_installed_pairs_with_iso_codes(apertium: ApertiumTranslator) -> None:
    pairs = apertium.pairs()
    assert EN_ES in pairs and LanguagePair("es", "en") in pairs
    assert all(len(p.source) <= 3 and len(p.target) <= 3 for p in pairs)


@needs_apertium
def test_translates_a_known_sentence(apertium: ApertiumTranslator) -> None:
    [spanish] = apertium.translate_texts(["The cat is black."], EN_ES)
    assert "gato" in spanish and "negro" in spanish
    assert "*" not in spanish


@needs_apertium
def test_batch_keeps_order_empties_and_segment_boundaries(apertium: ApertiumTranslator) -> None:
    texts = ["The cat is black.", "", "the dog", "is big", "   ", "12345"]
    out = apertium.translate_texts(texts, EN_ES)
    assert len(out) == len(texts)
    assert "gato" in out[0]
    assert out[1] == "" and out[4] == "   " and out[5] == "12345"
    # Mid-sentence pieces stay separate and keep their lower-case start.
    assert out[2] == "el perro" and out[3] == "es grande"


@needs_apertium
def test_characters_apertium_reserves_survive(apertium: ApertiumTranslator) -> None:
    [out] = apertium.translate_texts(["The price ~ 5 & <3 [x] a/b"], EN_ES)
    for kept in ("~", "&", "<3", "[x]"):
        assert kept in out


@needs_apertium
def test_translate_html_returns_markup_byte_for_byte(apertium: ApertiumTranslator) -> None:
    html = (
        "<div class=box id='main'><h1 data-x=\"a>b\">The red house</h1>"
        "<p>I like <b>red</b> cars. Run <code>make the build</code> now.<img src=cat.png alt='the cat'></p>"
        "<p>He runs <i> </i> quickly.</p><script>var dog = 'the dog';</script></div>"
    )
    out = apertium.translate_html(html, EN_ES)
    markup = sorted(t.raw for t in html_tokens(html) if t.kind != "text")
    assert sorted(t.raw for t in html_tokens(out) if t.kind != "text") == markup
    assert "<code>make the build</code>" in out and "var dog = 'the dog';" in out
    assert "casa" in out and "<b>rojos</b>" in out


@needs_apertium
def test_unsupported_pair_lists_supported_ones(apertium: ApertiumTranslator) -> None:
    with pytest.raises(InvalidArgument) as caught:
        apertium.translate_texts(["The cat."], LanguagePair("en", "ja"))
    assert caught.value.reason == "UNSUPPORTED_LANGUAGE_PAIR"
    assert "en-es" in caught.value.metadata["supported_pairs"].split(",")
    with pytest.raises(InvalidArgument):
        check_pair(apertium, LanguagePair("en", "ja"))


@needs_apertium
def test_a_batch_over_its_deadline_fails_with_deadline_exceeded() -> None:
    translator = ApertiumTranslator(timeout_s=0.001)
    with pytest.raises(DeadlineExceeded):
        translator.translate_texts(["The cat is black. " * 200], EN_ES)


@pytest.mark.parametrize(("source", "target"), [("EN", "es"), ("english", "es"), ("", "es")])
def test_language_codes_are_validated(source: str, target: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        LanguagePair(source, target)
    assert caught.value.reason == "INVALID_LANGUAGE_CODE"


def test_language_pair_text_form() -> None:
    assert str(EN_ES) == "en-es"
    assert LanguagePair.parse(" EN-es ") == EN_ES
