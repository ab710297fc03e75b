"""The streaming session with the real tiny.en model, fed recorded speech in 100 ms chunks."""
from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import av
import jiwer
import numpy as np
import pytest

from violet_grpc.errors import InvalidArgument
from violet_grpc.miner.engines.asr import (
    Final,
    Interim,
    StreamEvent,
    StreamOptions,
    StreamSession,
    UtteranceEnd,
    Word,
)
from violet_grpc.miner.engines.faster_whisper_engine import FasterWhisperEngine
from violet_grpc.miner.engines.streaming_decoder import (
    StreamingDecoder,
    StreamTuning,
    _repeat_start,
)

SAMPLE_RATE = 16_000
CHUNK = SAMPLE_RATE // 10
Streamed = tuple[StreamSession, list[list[StreamEvent]]]


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


def feed(session: StreamSession, audio: np.ndarray, chunk: int = CHUNK) -> list[list[StreamEvent]]:
    """Events of every accept call, then of finish, as separate batches."""
    batches = [session.accept(audio[i : i + chunk]) for i in range(0, audio.size, chunk)]
    return [*batches, session.finish()]


def finals(batches: Sequence[Sequence[StreamEvent]]) -> list[Final]:
    return [e for batch in batches for e in batch if isinstance(e, Final)]


def final_text(batches: Sequence[Sequence[StreamEvent]]) -> str:
    return " ".join(f.segment.text for f in finals(batches))


@pytest.fixture(scope="module")
def engine() -> FasterWhisperEngine:
    return FasterWhisperEngine()


@pytest.fixture(scope="module")
def jfk_audio(jfk_flac: Path) -> np.ndarray:
    return decode(jfk_flac)


@pytest.fixture(scope="module")
def jfk_stream(engine: FasterWhisperEngine, jfk_audio: np.ndarray) -> Streamed:
    session = engine.open_stream(StreamOptions())
    return session, feed(session, jfk_audio)


def test_streamed_final_text_is_accurate(jfk_stream: Streamed, jfk_text: str) -> None:
    session, batches = jfk_stream
    assert isinstance(session, StreamSession)
    assert wer(jfk_text, final_text(batches)) <= 0.10
    assert session.language == "en"
    assert session.audio_seconds == pytest.approx(11.0, abs=0.01)


def test_agreed_words_stay_interim_with_high_stability_when_asked(engine: FasterWhisperEngine,
                                                                  jfk_audio: np.ndarray, jfk_text: str) -> None:
    from violet_grpc.miner.engines.streaming_decoder import StreamingDecoder, StreamTuning

    session = StreamingDecoder(engine.whisper_model, StreamOptions(), StreamTuning(finalize_agreed=False))
    batches = feed(session, jfk_audio)
    during = [e for batch in batches[:-1] for e in batch if isinstance(e, Interim)]
    assert {e.stability for e in during} >= {0.9}, "agreed words carry high stability"
    assert wer(jfk_text, final_text(batches)) <= 0.10


def test_interims_arrive_before_the_end(jfk_stream: Streamed) -> None:
    _, batches = jfk_stream
    during = [e for batch in batches[:-1] for e in batch if isinstance(e, Interim)]
    assert len(during) >= 3
    assert all(0.0 <= e.stability <= 1.0 and e.text and e.start <= e.end for e in during)
    before_last_chunk = [e for batch in batches[:-2] for e in batch if isinstance(e, Final)]
    assert before_last_chunk, "pauses finalize utterances before the audio ends"


def test_utterances_are_numbered_and_closed(jfk_stream: Streamed) -> None:
    _, batches = jfk_stream
    events = [e for batch in batches for e in batch if not isinstance(e, Interim)]
    ends = [e for e in events if isinstance(e, UtteranceEnd)]
    assert [e.utterance_index for e in ends] == list(range(len(ends)))
    assert len(ends) >= 2, "the clip has clear pauses"
    current = 0
    for event in events:
        if isinstance(event, Final):
            assert event.utterance_index == current
        else:
            current = event.utterance_index + 1
    assert isinstance(events[-1], UtteranceEnd)


def test_final_times_are_monotonic_floats_inside_the_audio(jfk_stream: Streamed) -> None:
    session, batches = jfk_stream
    segments = [f.segment for f in finals(batches)]
    words: list[Word] = [w for s in segments for w in s.words]
    assert words
    for earlier, later in pairwise(segments):
        assert earlier.end <= later.start + 1e-6
    for before, after in pairwise(words):
        assert before.end <= after.start + 1e-6
    for word in words:
        assert type(word.start) is float and type(word.end) is float
        assert type(word.probability) is float
        assert 0.0 <= word.start <= word.end <= session.audio_seconds


def test_word_times_are_absolute_stream_time(engine: FasterWhisperEngine, jfk_audio: np.ndarray) -> None:
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = np.concatenate([jfk_audio, gap, jfk_audio])
    batches = feed(engine.open_stream(StreamOptions(interim_results=False)), audio)
    second = [w for f in finals(batches) for w in f.segment.words if w.start >= 12.0]
    assert len(second) >= 15, "the second copy is timed after the first"
    assert max(w.end for f in finals(batches) for w in f.segment.words) <= audio.size / SAMPLE_RATE
    assert not any(isinstance(e, Interim) for batch in batches for e in batch)


def test_silence_produces_no_text(engine: FasterWhisperEngine) -> None:
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(8 * SAMPLE_RATE) * 1e-4).astype(np.float32)
    batches = feed(engine.open_stream(StreamOptions()), quiet)
    assert [e for batch in batches for e in batch] == []


def test_coalesced_audio_gives_the_same_text(engine: FasterWhisperEngine, jfk_audio: np.ndarray, jfk_text: str) -> None:
    session = engine.open_stream(StreamOptions(hotwords="Americans"))
    batches = [session.accept(jfk_audio), session.finish()]
    assert wer(jfk_text, final_text(batches)) <= 0.10


@pytest.mark.parametrize("tuning", [StreamTuning(max_buffer_s=4.0), StreamTuning(max_buffer_s=3.0, hard_buffer_s=3.0)])
def test_long_utterances_are_trimmed_and_finalized(
    engine: FasterWhisperEngine, jfk_audio: np.ndarray, jfk_text: str, tuning: StreamTuning
) -> None:
    # A 2 s endpoint turns the clip into one 10 s utterance; a short buffer forces trims
    # (and, with no room above max_buffer_s, cuts where nothing was agreed yet).
    session = StreamingDecoder(engine.whisper_model, StreamOptions(endpoint_silence_ms=2000), tuning)
    batches = feed(session, jfk_audio)
    early = finals(batches[:-1])
    assert early, "long utterances are finalized before the pause"
    assert wer(jfk_text, final_text(batches)) <= 0.15
    words = [w for f in finals(batches) for w in f.segment.words]
    assert all(before.end <= after.start + 1e-6 for before, after in pairwise(words))


def test_tuning_must_fit_the_encoder_window() -> None:
    with pytest.raises(InvalidArgument) as caught:
        StreamTuning(hard_buffer_s=25.0)
    assert caught.value.reason == "INVALID_STREAM_TUNING"


def test_agreed_words_can_be_sent_as_finals(engine: FasterWhisperEngine, jfk_audio: np.ndarray, jfk_text: str) -> None:
    options = StreamOptions(interim_results=False, initial_prompt="President Kennedy:")
    session = StreamingDecoder(engine.whisper_model, options, StreamTuning(finalize_agreed=True))
    batches = feed(session, jfk_audio)
    ends = [e for batch in batches for e in batch if isinstance(e, UtteranceEnd)]
    assert len(finals(batches)) > len(ends), "several finals per utterance"
    assert wer(jfk_text, final_text(batches)) <= 0.10


def test_bad_input_is_refused(engine: FasterWhisperEngine) -> None:
    session = engine.open_stream(StreamOptions())
    with pytest.raises(InvalidArgument) as shape:
        session.accept(np.zeros((2, 100), dtype=np.float32))
    assert shape.value.reason == "INVALID_AUDIO"
    assert session.accept(np.zeros(0, dtype=np.float32)) == []
    assert session.finish() == []
    with pytest.raises(InvalidArgument) as finished:
        session.accept(np.zeros(100, dtype=np.float32))
    assert finished.value.reason == "STREAM_FINISHED"
    for options in (StreamOptions(step_ms=0), StreamOptions(step_ms=5000), StreamOptions(endpoint_silence_ms=-1)):
        with pytest.raises(InvalidArgument) as timing:
            engine.open_stream(options)
        assert timing.value.reason == "INVALID_STREAM_OPTIONS"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("And so my fellow Americans . And so my fellow Americans .", 6),
        ("Ask what you can do . Ask what you", 6),
        ("what your country can do for you ask what you can do for your country", 15),
        ("very very good", 3),
        ("I think I think so", 5),
    ],
)
def test_repeated_phrases_are_cut(text: str, kept: int) -> None:
    assert _repeat_start([" " + w for w in text.split()]) == kept
