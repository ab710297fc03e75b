"""Coqui TTS (``coqui-tts``): production voices beyond Piper, on CPU or GPU.

Coqui pulls in torch (gigabytes), so it is an optional extra
(``pip install 'violet-grpc[coqui]'``) and this module imports it only when an engine is
built: the rest of Violet, and this module itself, import without it.

Models are given by path (checkpoint + ``config.json``); nothing is downloaded. A
multi-speaker model lists each speaker as a voice.
"""
from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from violet_grpc.errors import FailedPrecondition, InvalidArgument
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

__all__ = ["CoquiEngine"]

Device = Literal["cpu", "cuda", "auto"]
_INSTALL_HINT = "pip install 'violet-grpc[coqui]'"


@dataclass(frozen=True)
class _Knobs:
    """The model attributes one request changes; saved and restored around each sentence."""

    length_scale: float | None
    noise_scale: float | None
    noise_scale_dp: float | None


class CoquiEngine:
    """Synthesizes with one Coqui TTS model (VITS, Glow-TTS, Tacotron + vocoder …).

    Args:
        model_path: The model checkpoint (``model.pth``).
        config_path: Its ``config.json``.
        device: ``"cpu"``, ``"cuda"``, or ``"auto"`` (CUDA when torch sees a GPU).
        threads: CPU threads for torch; defaults to every core. Set it when other work
            shares the machine: torch's default spin-waits and slows everyone down.

    Raises:
        FailedPrecondition: ``ENGINE_NOT_INSTALLED`` without ``coqui-tts``,
            ``MODEL_NOT_FOUND`` / ``MODEL_INVALID`` for the files, ``CUDA_UNAVAILABLE``.
    """

    name = "coqui"

    def __init__(
        self,
        model_path: Path,
        config_path: Path,
        device: Device = "auto",
        threads: int | None = None,
    ) -> None:
        torch, synthesizer_cls = _import_coqui()
        self._torch = torch
        torch.set_num_threads(threads or _usable_cores())
        self.device = _resolve_device(torch, device)
        self._synth = _load(synthesizer_cls, Path(model_path), Path(config_path),
                            use_cuda=self.device == "cuda")
        self._model = self._synth.tts_model
        self._lock = threading.Lock()
        # Read once, before any request can change them: the model's own settings.
        self._base = self._current_knobs()
        self._sample_rate = int(self._synth.output_sample_rate)
        self._voices = _voices(self._synth, Path(model_path), self._sample_rate)
        self._default = self._voices[0].voice_id

    def voices(self) -> tuple[Voice, ...]:
        """The model's speakers as voices (or one voice named after the model's folder)."""
        return self._voices

    def synthesize_stream(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        """Yield one chunk per sentence, each as soon as it is computed.

        Raises:
            InvalidArgument: ``EMPTY_TEXT``, ``TEXT_TOO_LONG``, ``UNKNOWN_VOICE``,
                ``UNSUPPORTED_OPTION`` (speed or noise on a model without those controls).
        """
        speaker = self._speaker(options.voice)
        sentences = split_sentences(validate_text(text))
        knobs = self._knobs_for(options)
        return chunk_stream(sentences, lambda s: self._render(s, speaker, knobs), self._sample_rate)

    def synthesize(self, text: str, options: SynthesisOptions) -> AudioChunk:
        """The whole text as one chunk.

        Raises:
            InvalidArgument: as :meth:`synthesize_stream`.
        """
        return join_chunks(self.synthesize_stream(text, options), text.strip(), self._sample_rate)

    # -------------------------------------------------------------------- internals

    def _speaker(self, voice_id: str | None) -> str | None:
        """Coqui's speaker name for a voice id; ``None`` for a single-speaker model."""
        key = voice_id or self._default
        if key not in {v.voice_id for v in self._voices}:
            raise unknown_voice(key, (v.voice_id for v in self._voices))
        return key if _speaker_names(self._synth) else None

    def _knobs_for(self, options: SynthesisOptions) -> _Knobs:
        """The model settings these options ask for, checked against what the model has."""
        base = self._base
        if options.speed != 1.0 and base.length_scale is None:
            raise _unsupported("speed", self._model)
        noise: float | None
        noise_dp: float | None
        if options.deterministic:
            noise, noise_dp = 0.0, 0.0
        else:
            noise, noise_dp = options.noise_scale, options.noise_w
            if (noise is not None and base.noise_scale is None) or (
                noise_dp is not None and base.noise_scale_dp is None
            ):
                raise _unsupported("noise", self._model)
        return _Knobs(
            length_scale=None if base.length_scale is None else base.length_scale / options.speed,
            noise_scale=noise if base.noise_scale is not None else None,
            noise_scale_dp=noise_dp if base.noise_scale_dp is not None else None,
        )

    def _current_knobs(self) -> _Knobs:
        return _Knobs(
            length_scale=getattr(self._model, "length_scale", None),
            noise_scale=getattr(self._model, "inference_noise_scale", None),
            noise_scale_dp=getattr(self._model, "inference_noise_scale_dp", None),
        )

    def _render(self, sentence: str, speaker: str | None, knobs: _Knobs) -> np.ndarray:
        """One sentence, with the request's settings applied for exactly this call.

        The settings are attributes of the shared model, so concurrent requests take
        turns; torch already uses every thread it was given for one sentence.
        """
        with self._lock:
            self._apply(knobs)
            try:
                with self._torch.inference_mode():
                    wav = self._synth.tts(sentence, speaker_name=speaker, split_sentences=False)
            finally:
                self._apply(self._base)
        return np.asarray(wav, dtype=np.float32).reshape(-1)

    def _apply(self, knobs: _Knobs) -> None:
        for attribute, value in (
            ("length_scale", knobs.length_scale),
            ("inference_noise_scale", knobs.noise_scale),
            ("inference_noise_scale_dp", knobs.noise_scale_dp),
        ):
            if value is not None:
                setattr(self._model, attribute, value)


def _import_coqui() -> tuple[Any, Any]:
    """torch and Coqui's Synthesizer, or a clear error saying how to install them."""
    try:
        torch = importlib.import_module("torch")
        synthesizer = importlib.import_module("TTS.utils.synthesizer")
    except ImportError as exc:
        raise FailedPrecondition(
            f"Coqui TTS is not installed ({exc}); install it with: {_INSTALL_HINT}",
            reason="ENGINE_NOT_INSTALLED",
            metadata={"engine": "coqui", "install": _INSTALL_HINT},
        ) from exc
    return torch, synthesizer.Synthesizer


def _usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _resolve_device(torch: Any, device: Device) -> str:
    if device not in ("cpu", "cuda", "auto"):
        raise InvalidArgument(f"device must be cpu, cuda or auto, got {device!r}",
                              reason="INVALID_DEVICE", metadata={"device": str(device)})
    has_cuda = bool(torch.cuda.is_available())
    if device == "cuda" and not has_cuda:
        raise FailedPrecondition("CUDA was requested but torch sees no GPU",
                                 reason="CUDA_UNAVAILABLE")
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    return device


def _load(synthesizer_cls: Any, model_path: Path, config_path: Path, *, use_cuda: bool) -> Any:
    for required in (model_path, config_path):
        if not required.is_file():
            raise FailedPrecondition(f"Coqui model file missing: {required}",
                                     reason="MODEL_NOT_FOUND", metadata={"path": str(required)})
    try:
        return synthesizer_cls(tts_checkpoint=model_path, tts_config_path=config_path,
                               use_cuda=use_cuda)
    except Exception as exc:  # Coqui raises anything from KeyError to RuntimeError here
        raise FailedPrecondition(
            f"cannot load Coqui model {model_path}: {exc}",
            reason="MODEL_INVALID",
            metadata={"path": str(model_path)},
        ) from exc


def _speaker_names(synth: Any) -> list[str]:
    manager = getattr(synth.tts_model, "speaker_manager", None)
    names = list(getattr(manager, "speaker_names", None) or []) if manager is not None else []
    return names if len(names) > 1 else []


def _voices(synth: Any, model_path: Path, sample_rate: int) -> tuple[Voice, ...]:
    config = synth.tts_config
    language = str(config.get("phoneme_language") or "en")
    model_name = str(config.get("model") or "coqui")
    speakers = _speaker_names(synth)
    if speakers:
        return tuple(
            Voice(voice_id=name, language=language, sample_rate=sample_rate, engine="coqui",
                  description=f"{model_name} speaker {name}")
            for name in speakers
        )
    return (Voice(voice_id=model_path.parent.name or model_path.stem, language=language,
                  sample_rate=sample_rate, engine="coqui",
                  description=f"{model_name} model at {model_path}"),)


def _unsupported(option: str, model: Any) -> InvalidArgument:
    return InvalidArgument(
        f"this Coqui model ({type(model).__name__}) has no {option} control",
        reason="UNSUPPORTED_OPTION",
        metadata={"field": option, "model": type(model).__name__},
    )
