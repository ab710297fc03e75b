"""The CTranslate2 engine's plumbing, with tiny random-weight models built on the spot.

No real OPUS-MT or NLLB model is available offline, so these models translate into noise;
what is checked is everything around the network: model and tokenizer discovery, the
Marian and NLLB token conventions, sentence splitting, batching and error reporting.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from violet_grpc.errors import FailedPrecondition, InvalidArgument
from violet_grpc.miner.engines.ctranslate2_engine import CTranslate2Translator
from violet_grpc.miner.engines.translate import LanguagePair, html_tokens

EN_ES = LanguagePair("en", "es")
CORPUS = ["the cat is black", "the dog is white", "hello world", "el gato es negro", "el perro es blanco"] * 20


def build_model(directory: Path, *, nllb: bool = False) -> Path:
    """Write a one-layer random Transformer and a SentencePiece model trained on CORPUS."""
    spm = pytest.importorskip("sentencepiece")
    from ctranslate2.converters import marian
    from ctranslate2.specs import transformer_spec

    directory.mkdir(parents=True)
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=proto, vocab_size=40, model_type="bpe",
        bos_id=-1, eos_id=1, unk_id=0, pad_id=-1, minloglevel=2,
    )
    processor = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    vocab = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    vocab += ["eng_Latn", "spa_Latn"] if nllb else ["<pad>"]
    for name in ("sentencepiece.bpe.model",) if nllb else ("source.spm", "target.spm"):
        (directory / name).write_bytes(proto.getvalue())
    spec = transformer_spec.TransformerSpec.from_config(1, 2, pre_norm=False)
    marian.set_transformer_spec(spec, _random_marian_weights(len(vocab)))
    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    spec.config.add_source_eos = False
    spec.validate()
    spec.optimize()
    spec.save(str(directory))
    return directory


def _random_marian_weights(vocab_size: int, dim: int = 8, ffn: int = 16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    weights: dict[str, np.ndarray] = {"Wemb": rng.standard_normal((vocab_size, dim), np.float32)}

    def norm(scope: str) -> None:
        weights[f"{scope}_ln_scale"] = np.ones((1, dim), np.float32)
        weights[f"{scope}_ln_bias"] = np.zeros((1, dim), np.float32)

    for scope in ("encoder_l1_self", "decoder_l1_self", "decoder_l1_context"):
        for x in "qkvo":
            weights[f"{scope}_W{x}"] = rng.standard_normal((dim, dim), np.float32)
            weights[f"{scope}_b{x}"] = np.zeros((1, dim), np.float32)
        norm(f"{scope}_Wo")
    for scope in ("encoder_l1_ffn", "decoder_l1_ffn"):
        weights[f"{scope}_W1"] = rng.standard_normal((dim, ffn), np.float32)
        weights[f"{scope}_b1"] = np.zeros((1, ffn), np.float32)
        weights[f"{scope}_W2"] = rng.standard_normal((ffn, dim), np.float32)
        weights[f"{scope}_b2"] = np.zeros((1, dim), np.float32)
        norm(f"{scope}_ffn")
    weights["decoder_ff_logit_out_b"] = np.zeros((1, vocab_size), np.float32)
    return weights


@pytest.fixture(scope="module")
def marian_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("models") / "opus-mt-en-es")


@pytest.fixture(scope="module")
def nllb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("models") / "nllb-tiny", nllb=True)


def test_a_missing_model_directory_is_a_clear_precondition(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        CTranslate2Translator(tmp_path / "nowhere", EN_ES)
    assert caught.value.reason == "MODEL_NOT_FOUND"
    assert "model.bin" in caught.value.message


def test_a_model_without_sentencepiece_files_names_them(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(FailedPrecondition) as caught:
        CTranslate2Translator(tmp_path, EN_ES)
    assert "source.spm" in caught.value.message and "sentencepiece.bpe.model" in caught.value.message


def test_only_sentencepiece_tokenizers_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        CTranslate2Translator(tmp_path, EN_ES, tokenizer="moses")
    assert caught.value.reason == "UNSUPPORTED_TOKENIZER"


def test_from_directory_reads_the_pair_from_the_name_or_violet_json(marian_dir: Path, tmp_path: Path) -> None:
    assert CTranslate2Translator.from_directory(marian_dir, device="cpu").pairs() == (EN_ES,)
    renamed = tmp_path / "my-model"
    renamed.mkdir()
    for path in marian_dir.iterdir():
        (renamed / path.name).write_bytes(path.read_bytes())
    with pytest.raises(FailedPrecondition) as caught:
        CTranslate2Translator.from_directory(renamed)
    assert caught.value.reason == "MODEL_PAIR_UNKNOWN"
    (renamed / "violet.json").write_text(json.dumps({"source": "es", "target": "en", "beam_size": 1}))
    translator = CTranslate2Translator.from_directory(renamed, device="cpu")
    assert translator.pairs() == (LanguagePair("es", "en"),) and translator.beam_size == 1


def test_marian_model_translates_batches_keeping_order_and_layout(marian_dir: Path) -> None:
    translator = CTranslate2Translator(marian_dir, EN_ES, device="auto", beam_size=2, max_decoding_length=6)
    assert translator.family == "marian" and translator.device in ("cpu", "cuda")
    texts = ["The cat is black. The dog is white!", "", "  hello world  ", "...", "hello"]
    out = translator.translate_texts(texts, EN_ES)
    assert len(out) == len(texts)
    assert out[1] == "" and out[3] == "..."
    assert out[2].startswith("  ") and out[2].endswith("  ") and out[2].strip()
    # Each sentence is translated on its own and rejoined with the source's whitespace.
    assert out[0] == " ".join(translator.translate_texts(["The cat is black.", "The dog is white!"], EN_ES))
    assert out == translator.translate_texts(texts, EN_ES)  # beam search is deterministic


def test_html_keeps_markup_through_the_text_node_default(marian_dir: Path) -> None:
    translator = CTranslate2Translator(marian_dir, EN_ES, device="cpu", max_decoding_length=4)
    html = '<p class="x">the <b>cat</b> is black</p><code>hello world</code>'
    out = translator.translate_html(html, EN_ES)
    def markup(text: str) -> list[str]:
        return [t.raw for t in html_tokens(text) if t.kind != "text"]

    assert markup(out) == markup(html)
    assert out.endswith("<code>hello world</code>")


def test_an_unserved_pair_is_refused(marian_dir: Path) -> None:
    translator = CTranslate2Translator(marian_dir, EN_ES, device="cpu")
    with pytest.raises(InvalidArgument) as caught:
        translator.translate_texts(["hello"], LanguagePair("en", "ja"))
    assert caught.value.reason == "UNSUPPORTED_LANGUAGE_PAIR"


def test_nllb_model_gets_language_tokens(nllb_dir: Path) -> None:
    translator = CTranslate2Translator(nllb_dir, EN_ES, device="cpu", max_decoding_length=4)
    assert translator.family == "nllb"
    [out] = translator.translate_texts(["hello world"], EN_ES)
    assert "spa_Latn" not in out  # the forced target-language token is not part of the text
    with pytest.raises(InvalidArgument):
        CTranslate2Translator(nllb_dir, LanguagePair("en", "xx"), device="cpu")


def test_missing_sentencepiece_is_reported_with_an_install_hint(
    marian_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    translator = CTranslate2Translator(marian_dir, EN_ES, device="cpu")
    with pytest.raises(FailedPrecondition) as caught:
        translator.translate_texts(["hello"], EN_ES)
    assert "pip install sentencepiece" in caught.value.message
