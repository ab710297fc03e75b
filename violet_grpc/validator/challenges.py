"""Challenges with known answers.

* Transcription: one random sentence a round, rendered by the validator's own TTS once per
  miner with its own speaking rate, sampling noise, gain and background hiss, so that
  honest miners answer different audio (their timings differ) while a copier's answer
  carries another miner's audio in it. The reference is the sentence itself.
* Synthesis: random text for each miner to speak at its own rate; the validator
  transcribes the audio with its own ASR. Texts differ per miner, so audio copied from
  another miner says the wrong words (and byte-identical audio is flagged as a copy too).
* Translation: a different random text per miner (copying another miner's translation is
  then simply wrong); the reference is what the validator's own translator produces.
"""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from violet_grpc.audio import encode as audio_encode
from violet_grpc.validator.words import random_sentence, random_text

#: Speaking rates handed out within a round: distinct per miner, 4 % apart.
_RATES = tuple(round(0.84 + 0.04 * i, 2) for i in range(9))


@dataclass(frozen=True)
class Rendition:
    """The audio one miner gets for a transcription challenge."""

    audio: bytes
    duration: float
    speed: float
    gain: float
    snr_db: float


@dataclass(frozen=True)
class TranscriptionChallenge:
    """A sentence and its per-miner renditions (by hotkey)."""

    challenge_id: str
    text: str
    renditions: dict[str, Rendition] = field(default_factory=dict)


@dataclass(frozen=True)
class SynthesisChallenge:
    """Each miner's text and speaking rate (by hotkey)."""

    challenge_id: str
    items: dict[str, tuple[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class TranslationItem:
    """One miner's text to translate and the validator's reference translation."""

    text: str
    reference: str


@dataclass(frozen=True)
class TranslationChallenge:
    """A language pair and each miner's own text (by hotkey)."""

    challenge_id: str
    source: str
    target: str
    items: dict[str, TranslationItem] = field(default_factory=dict)


class Renderer(Protocol):
    """Turns text into challenge audio (the validator's TTS)."""

    def render(self, text: str, *, speed: float, noise_scale: float, noise_w: float, gain: float,
               snr_db: float, rng: random.Random) -> Rendition:
        """WAV audio of ``text`` with the given degradations."""
        ...


class TtsRenderer:
    """Renders with a TTS engine (Piper), then applies gain and background noise."""

    def __init__(self, tts: Any) -> None:
        self.tts = tts

    def render(self, text: str, *, speed: float, noise_scale: float, noise_w: float, gain: float,
               snr_db: float, rng: random.Random) -> Rendition:
        from violet_grpc.miner.engines.tts import SynthesisOptions

        chunk = self.tts.synthesize(text, SynthesisOptions(speed=speed, noise_scale=noise_scale, noise_w=noise_w))
        samples = np.asarray(chunk.samples, dtype=np.float32) * gain
        power = float(np.mean(samples ** 2)) or 1e-8
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)),
                                                                   samples.shape)
        mixed = np.clip(samples + noise.astype(np.float32), -1.0, 1.0)
        audio = audio_encode.encode(mixed, chunk.sample_rate, audio_encode.AudioFormat.WAV)
        return Rendition(audio=audio, duration=mixed.size / chunk.sample_rate, speed=speed, gain=gain, snr_db=snr_db)


class ChallengeMaker:
    """Makes challenges from a seeded random source.

    Args:
        rng: The randomness (seeded in tests, fresh in production).
        renderer: The validator's TTS, for transcription challenges.
        translator: The validator's translator (``translate_texts(texts, pair)``), for translation
            challenges; None disables them.
    """

    def __init__(self, rng: random.Random, renderer: Renderer | None = None, translator: Any | None = None) -> None:
        self.rng = rng
        self.renderer = renderer
        self.translator = translator

    def _rates(self, hotkeys: list[str]) -> dict[str, float]:
        """Speaking rates: 4 % apart while there are few miners, independent draws beyond."""
        if len(hotkeys) <= len(_RATES):
            rates = list(_RATES)
            self.rng.shuffle(rates)
            return dict(zip(hotkeys, rates))
        return {hotkey: round(self.rng.uniform(_RATES[0], _RATES[-1]), 3) for hotkey in hotkeys}

    def transcription(self, hotkeys: list[str]) -> TranscriptionChallenge:
        """A sentence rendered once per miner."""
        if self.renderer is None:
            raise RuntimeError("transcription challenges need a renderer (the validator's TTS)")
        text = random_sentence(self.rng)
        renditions = {
            hotkey: self.renderer.render(
                text, speed=speed, noise_scale=self.rng.uniform(0.3, 0.8), noise_w=self.rng.uniform(0.4, 0.9),
                gain=self.rng.uniform(0.35, 1.0), snr_db=self.rng.uniform(18.0, 35.0), rng=self.rng)
            for hotkey, speed in self._rates(hotkeys).items()
        }
        return TranscriptionChallenge(uuid.UUID(int=self.rng.getrandbits(128)).hex, text, renditions)

    def synthesis(self, hotkeys: list[str]) -> SynthesisChallenge:
        """A sentence per miner, each at its own rate."""
        rates = self._rates(hotkeys)
        return SynthesisChallenge(uuid.UUID(int=self.rng.getrandbits(128)).hex,
                                  {hotkey: (random_sentence(self.rng), rates[hotkey]) for hotkey in hotkeys})

    def translation(self, hotkeys: list[str], source: str = "en", target: str = "es") -> TranslationChallenge:
        """A text per miner with the validator's own reference translation."""
        if self.translator is None:
            raise RuntimeError("translation challenges need the validator's own translator")
        from violet_grpc.miner.engines.translate import LanguagePair

        pair = LanguagePair(source, target)
        items = {}
        for hotkey in hotkeys:
            text = random_text(self.rng, 2)
            [reference] = self.translator.translate_texts([text], pair)
            items[hotkey] = TranslationItem(text=text, reference=reference)
        return TranslationChallenge(uuid.UUID(int=self.rng.getrandbits(128)).hex, source, target, items)


def silent_wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    """A WAV of silence (for tests that stub the miners' behaviour and need no real audio)."""
    return audio_encode.encode(np.zeros(int(seconds * rate), dtype=np.float32), rate, audio_encode.AudioFormat.WAV)
