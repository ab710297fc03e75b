"""Building a validator from its settings: engines, challenge maker, rounds, organic evaluation."""
from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from violet_grpc.auth.identity import Identity
from violet_grpc.server_common import CHANNEL_OPTIONS
from violet_grpc.settings import MinerSettings, ValidatorSettings
from violet_grpc.validator.challenges import ChallengeMaker, TtsRenderer
from violet_grpc.validator.organic import OrganicEvaluator
from violet_grpc.validator.rounds import Budgets, Rounds
from violet_grpc.validator.scores import ScoreBook
from violet_grpc.validator.validator import Validator


def asr_listener(asr: Any) -> Callable[[bytes], tuple[str, float]]:
    """The validator's own ears: audio file bytes → (transcript text, duration in seconds)."""
    from violet_grpc.audio.decode import decode_file
    from violet_grpc.miner.engines.asr import TranscribeOptions

    options = TranscribeOptions(language="en", word_timestamps=False, beam_size=1)

    def listen(audio: bytes) -> tuple[str, float]:
        decoded = decode_file(audio, max_seconds=600)
        return asr.transcribe(decoded.samples, options).text, decoded.duration

    return listen


def load_validator_engines(settings: ValidatorSettings) -> Any:
    """ASR (scores synthesis, references organic transcripts), TTS (renders challenges), translator."""
    from shutil import which

    from violet_grpc.miner.engine_loader import load_engines

    wanted = set(settings.challenges)
    names = []
    if wanted & {"synthesis"} or settings.proxy_server_url:
        names.append("asr")
    if "transcription" in wanted:
        names.append("tts")
    if "translation" in wanted and which("apertium"):
        names.append("translate")
    return load_engines(MinerSettings(engines=names, cpu_threads=settings.cpu_threads, auth=False))


def build_validator(settings: ValidatorSettings, identity: Identity, engines: Any, *,
                    budgets: Budgets = Budgets()) -> Validator:
    """A validator wired from settings, an identity and loaded engines."""
    rng = random.Random(settings.seed or None)
    kinds = set(settings.challenges)
    renderer = TtsRenderer(engines.tts) if engines.tts is not None and "transcription" in kinds else None
    translator = engines.translator if "translation" in kinds else None
    listen = asr_listener(engines.asr) if engines.asr is not None else None
    rounds = Rounds(ChallengeMaker(rng, renderer, translator), listen if "synthesis" in kinds else None,
                    budgets=budgets, timeout=settings.timeout_seconds)
    organic = None
    if settings.proxy_server_url:
        channel = identity.channel(settings.proxy_server_url, settings.proxy_hotkey or None, options=CHANNEL_OPTIONS)
        organic = OrganicEvaluator(channel, identity.hotkey, listen)
    state = Path(settings.state_dir)
    return Validator(identity=identity, rounds=rounds, book=ScoreBook.load(state / "scores.json", settings.ema_alpha),
                     state_dir=state, organic=organic,
                     exclude=frozenset(h for h in (settings.proxy_hotkey,) if h))
