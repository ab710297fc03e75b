"""Builds a miner's engines from its settings.

Each engine is optional: a miner started with ``--engines asr`` serves transcription only
and says so in its capabilities. Heavy imports happen here, once, at start-up.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from violet_grpc import errors
from violet_grpc.settings import MinerSettings

log = logging.getLogger(__name__)

KNOWN_ENGINES = ("asr", "tts", "translate")


@dataclass
class Engines:
    """The engines one miner runs; ``None`` where the miner does not serve that kind of work."""

    asr: Any | None = None
    tts: Any | None = None
    translator: Any | None = None


def load_engines(settings: MinerSettings) -> Engines:
    """Loads the engines the settings ask for; unknown names are a configuration error."""
    unknown = sorted(set(settings.engines) - set(KNOWN_ENGINES))
    if unknown:
        raise errors.InvalidArgument(
            f"unknown engines {unknown}; choose from {list(KNOWN_ENGINES)}", reason="UNKNOWN_ENGINE"
        )
    engines = Engines()
    if "asr" in settings.engines:
        engines.asr = _load_asr(settings)
    if "tts" in settings.engines:
        engines.tts = _load_tts(settings)
    if "translate" in settings.engines:
        engines.translator = _load_translator(settings)
    return engines


def _load_asr(settings: MinerSettings) -> Any:
    from violet_grpc.miner.engines.faster_whisper_engine import FasterWhisperEngine

    log.info("loading ASR model %s on %s", settings.asr_model, settings.asr_device)
    return FasterWhisperEngine(
        settings.asr_model,
        device=settings.asr_device,
        compute_type=settings.asr_compute_type,
        cpu_threads=settings.cpu_threads,
    )


def _load_tts(settings: MinerSettings) -> Any:
    if settings.tts_engine == "coqui":
        from violet_grpc.miner.engines.coqui_engine import CoquiEngine

        if not settings.coqui_model or not settings.coqui_config:
            raise errors.InvalidArgument(
                "--tts-engine coqui needs --coqui-model and --coqui-config", reason="MISSING_SETTING"
            )
        return CoquiEngine(Path(settings.coqui_model), Path(settings.coqui_config), device=settings.asr_device)
    if settings.tts_engine != "piper":
        raise errors.InvalidArgument(
            f"unknown TTS engine {settings.tts_engine!r}; choose piper or coqui", reason="UNKNOWN_ENGINE"
        )
    from violet_grpc.miner.engines.piper_engine import PiperEngine

    voices = [Path(v) for v in settings.tts_voices] or None
    return PiperEngine(voices, use_cuda=settings.asr_device == "cuda")


def _load_translator(settings: MinerSettings) -> Any:
    if settings.translator == "apertium":
        from violet_grpc.miner.engines.apertium_engine import ApertiumTranslator

        return ApertiumTranslator()
    from violet_grpc.miner.engines.ctranslate2_engine import CTranslate2Translator

    return CTranslate2Translator.from_directory(Path(settings.translator), device=settings.asr_device)
