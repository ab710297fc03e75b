"""CTranslate2: neural translation with OPUS-MT (Marian) or NLLB models converted to CTranslate2.

A model directory is what ``ct2-opus-mt-converter`` / ``ct2-transformers-converter`` write
(``model.bin``, ``config.json``, vocabulary files) plus the SentencePiece models the original
checkpoint ships: ``source.spm`` and ``target.spm`` for OPUS-MT, one shared
``sentencepiece.bpe.model`` for NLLB. NLLB is multilingual, so it is told the languages
with FLORES-200 codes: a source-language token starts each input and a target-language token
is forced as the first output token.

Text is split into sentences before translation: these models are trained on single
sentences and drop or repeat content when handed a paragraph. Everything heavy (the model,
SentencePiece) loads on first use, so a miner starts fast and a missing package is reported
as a clear precondition rather than an import crash.
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from violet_grpc.errors import FailedPrecondition, InvalidArgument
from violet_grpc.miner.engines.translate import WORD, LanguagePair, Translator, check_pair, keep_edges

Family = Literal["auto", "marian", "nllb"]

#: ISO 639-1 -> FLORES-200 codes NLLB uses for its language tokens.
NLLB_CODES = {
    "ar": "arb_Arab", "bg": "bul_Cyrl", "bn": "ben_Beng", "ca": "cat_Latn", "cs": "ces_Latn",
    "da": "dan_Latn", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn",
    "et": "est_Latn", "eu": "eus_Latn", "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn",
    "gl": "glg_Latn", "he": "heb_Hebr", "hi": "hin_Deva", "hr": "hrv_Latn", "hu": "hun_Latn",
    "id": "ind_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "ko": "kor_Hang", "lt": "lit_Latn",
    "lv": "lvs_Latn", "nl": "nld_Latn", "no": "nob_Latn", "pl": "pol_Latn", "pt": "por_Latn",
    "ro": "ron_Latn", "ru": "rus_Cyrl", "sk": "slk_Latn", "sl": "slv_Latn", "sr": "srp_Cyrl",
    "sv": "swe_Latn", "sw": "swh_Latn", "th": "tha_Thai", "tr": "tur_Latn", "uk": "ukr_Cyrl",
    "ur": "urd_Arab", "vi": "vie_Latn", "zh": "zho_Hans",
}
_SHARED_SPM = ("sentencepiece.bpe.model", "sentencepiece.model", "spm.model")
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026\u3002\uff01\uff1f])(\s+)")
_PAIR_IN_NAME = re.compile(r"(?:^|[-_])([a-z]{2,3})[-_]([a-z]{2,3})$")


class CTranslate2Translator(Translator):
    """Translates one direction with a CTranslate2 model directory.

    Args:
        model_dir: The converted model (see the module doc for its files).
        pair: The direction the model translates.
        device: "cpu", "cuda" or "auto" (CUDA when a GPU is visible).
        tokenizer: Only "sentencepiece" is supported; the argument exists so a directory
            with another tokenizer fails loudly instead of translating garbage.
        family: "marian" (OPUS-MT), "nllb", or "auto" to tell from the files.
        beam_size: Beam width (1 is greedy: fastest, slightly worse).
        max_batch_size: Sentences per CTranslate2 batch.
        compute_type: CTranslate2 quantization ("default", "int8", "float16"...).
        target_token: A token prepended to each source sentence, for multi-target OPUS-MT
            models (e.g. ">>spa<<").
        max_decoding_length: Most tokens generated per sentence (a guard against a model
            that never emits end-of-sentence).

    Raises:
        FailedPrecondition: ``MODEL_NOT_FOUND`` when the directory or its files are missing.
        InvalidArgument: ``UNSUPPORTED_LANGUAGE_PAIR`` for an NLLB language it cannot name.
    """

    name = "ctranslate2"

    def __init__(
        self,
        model_dir: Path,
        pair: LanguagePair,
        *,
        device: str = "auto",
        tokenizer: str = "sentencepiece",
        family: Family = "auto",
        beam_size: int = 4,
        max_batch_size: int = 32,
        compute_type: str = "default",
        target_token: str | None = None,
        max_decoding_length: int = 256,
    ) -> None:
        if tokenizer != "sentencepiece":
            raise InvalidArgument(
                f"tokenizer {tokenizer!r} is not supported; use 'sentencepiece'",
                reason="UNSUPPORTED_TOKENIZER",
                metadata={"tokenizer": tokenizer, "supported": "sentencepiece"},
            )
        self.model_dir = Path(model_dir)
        self.pair = pair
        self.beam_size = beam_size
        self.max_batch_size = max_batch_size
        self.compute_type = compute_type
        self.target_token = target_token
        self.max_decoding_length = max_decoding_length
        self._spm_source, self._spm_target = _spm_files(self.model_dir)
        self.family = _detect_family(self.model_dir, self._spm_source, self._spm_target) if family == "auto" else family
        self._language_tokens = _nllb_tokens(pair) if self.family == "nllb" else None
        self.device = _resolve_device(device)
        self._config = _read_config(self.model_dir)
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, Any] | None = None

    @classmethod
    def from_directory(cls, model_dir: Path, *, device: str = "auto", **options: Any) -> CTranslate2Translator:
        """Build from a directory, reading the pair from ``violet.json`` or the directory name.

        ``violet.json`` holds ``{"source": "en", "target": "es"}`` plus any constructor
        option (``beam_size``, ``target_token``...); without it, a name ending in the pair
        (``opus-mt-en-es``) is enough.

        Raises:
            FailedPrecondition: ``MODEL_NOT_FOUND`` / ``MODEL_PAIR_UNKNOWN``.
        """
        model_dir = Path(model_dir)
        _require_model(model_dir)
        settings: dict[str, Any] = {}
        manifest = model_dir / "violet.json"
        if manifest.is_file():
            settings = json.loads(manifest.read_text(encoding="utf-8"))
        source, target = settings.pop("source", None), settings.pop("target", None)
        if not (source and target):
            match = _PAIR_IN_NAME.search(model_dir.name.lower())
            if match is None:
                raise FailedPrecondition(
                    f"cannot tell which languages {model_dir} translates; add violet.json "
                    '({"source": "en", "target": "es"}) or name the directory like opus-mt-en-es',
                    reason="MODEL_PAIR_UNKNOWN",
                    metadata={"model_dir": str(model_dir)},
                )
            source, target = match.groups()
        return cls(model_dir, LanguagePair(source, target), device=device, **{**settings, **options})

    def pairs(self) -> tuple[LanguagePair, ...]:
        """The single direction this model translates."""
        return (self.pair,)

    def translate_texts(self, texts: Sequence[str], pair: LanguagePair) -> list[str]:
        """Translate segments sentence by sentence in batches, keeping the whitespace between."""
        check_pair(self, pair)
        pieces = [_SENTENCE_END.split(text) for text in texts]
        sentences = [p for split in pieces for p in split[0::2] if WORD.search(p)]
        translated = iter(self._translate_sentences(sentences))
        results: list[str] = []
        for split in pieces:
            for index in range(0, len(split), 2):
                if WORD.search(split[index]):
                    split[index] = keep_edges(split[index], next(translated))
            results.append("".join(split))
        return results

    def _translate_sentences(self, sentences: list[str]) -> list[str]:
        if not sentences:
            return []
        translator, source_spm, target_spm = self._load()
        batch = [self._source_tokens(source_spm, s) for s in sentences]
        prefix = [[self._language_tokens[1]]] * len(batch) if self._language_tokens else None
        results = translator.translate_batch(
            batch,
            target_prefix=prefix,
            beam_size=self.beam_size,
            max_batch_size=self.max_batch_size,
            max_decoding_length=self.max_decoding_length,
        )
        skip = 1 if self._language_tokens else 0
        return [target_spm.decode(result.hypotheses[0][skip:]) for result in results]

    def _source_tokens(self, spm: Any, sentence: str) -> list[str]:
        tokens: list[str] = spm.encode(sentence, out_type=str)
        if self._language_tokens:
            tokens = [self._language_tokens[0], *tokens]
        elif self.target_token:
            tokens = [self.target_token, *tokens]
        # Models converted with add_source_eos append </s> themselves; others expect it.
        return tokens if self._config.get("add_source_eos") else [*tokens, "</s>"]

    def _load(self) -> tuple[Any, Any, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_now()
            return self._loaded

    def _load_now(self) -> tuple[Any, Any, Any]:
        import ctranslate2

        try:
            import sentencepiece
        except ImportError:
            raise FailedPrecondition(
                "the CTranslate2 translator needs sentencepiece; run: pip install sentencepiece",
                reason="ENGINE_NOT_INSTALLED",
                metadata={"package": "sentencepiece", "install": "pip install sentencepiece"},
            ) from None
        try:
            translator = ctranslate2.Translator(str(self.model_dir), device=self.device, compute_type=self.compute_type)
        except (RuntimeError, ValueError) as error:
            raise FailedPrecondition(
                f"cannot load the CTranslate2 model in {self.model_dir}: {error}",
                reason="MODEL_INVALID",
                metadata={"model_dir": str(self.model_dir)},
            ) from error
        source = sentencepiece.SentencePieceProcessor(model_file=str(self._spm_source))
        target = source
        if self._spm_target != self._spm_source:
            target = sentencepiece.SentencePieceProcessor(model_file=str(self._spm_target))
        return translator, source, target


def _require_model(model_dir: Path) -> None:
    if not (model_dir / "model.bin").is_file():
        raise FailedPrecondition(
            f"no CTranslate2 model in {model_dir} (model.bin missing); convert one with "
            "ct2-opus-mt-converter or ct2-transformers-converter",
            reason="MODEL_NOT_FOUND",
            metadata={"model_dir": str(model_dir)},
        )


def _spm_files(model_dir: Path) -> tuple[Path, Path]:
    """The source and target SentencePiece models (the same file for a shared vocabulary)."""
    _require_model(model_dir)
    if (model_dir / "source.spm").is_file() and (model_dir / "target.spm").is_file():
        return model_dir / "source.spm", model_dir / "target.spm"
    shared = next((model_dir / name for name in _SHARED_SPM if (model_dir / name).is_file()), None)
    if shared is None:
        raise FailedPrecondition(
            f"no SentencePiece model in {model_dir}: copy source.spm and target.spm (OPUS-MT) "
            "or sentencepiece.bpe.model (NLLB) from the original checkpoint",
            reason="MODEL_NOT_FOUND",
            metadata={"model_dir": str(model_dir)},
        )
    return shared, shared


def _detect_family(model_dir: Path, source: Path, target: Path) -> Family:
    """NLLB when the shared vocabulary holds FLORES language tokens, else Marian."""
    if source != target:
        return "marian"
    for name in ("shared_vocabulary.json", "shared_vocabulary.txt"):
        path = model_dir / name
        if path.is_file() and "eng_Latn" in path.read_text(encoding="utf-8", errors="ignore"):
            return "nllb"
    return "marian"


def _nllb_tokens(pair: LanguagePair) -> tuple[str, str]:
    missing = [code for code in (pair.source, pair.target) if code not in NLLB_CODES]
    if missing:
        raise InvalidArgument(
            f"no NLLB language code known for {', '.join(missing)}",
            reason="UNSUPPORTED_LANGUAGE_PAIR",
            metadata={"pair": str(pair), "supported_languages": ",".join(sorted(NLLB_CODES))},
        )
    return NLLB_CODES[pair.source], NLLB_CODES[pair.target]


def _read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        return {}
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return config


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"

