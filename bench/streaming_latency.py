"""Streaming ASR latency: Violet's StreamSession against a whisper_streaming-style baseline.

Why this benchmark exists: the streaming path is judged on how soon a word becomes *final*
after it was spoken (DESIGN §7: median under 1 s, flat however long the stream runs), with no
worse WER than the peer. All systems run in this process on the same model, one after the
other per repeat, fed at real-time pace by a feeder thread that pushes ``chunk_ms`` chunks on
the wall clock while the decoder works on the same clock, taking whatever arrived meanwhile in
one call (computation-aware: a slow decoder falls behind and pays for it).

Systems: ``violet`` (the session as the engine opens it: agreed words are high-stability
interims until a pause finalizes the utterance), ``violet-agreed`` (the same session sending
agreed words as Finals at once, whisper_streaming's semantics) and ``baseline``
(:class:`LocalAgreementBaseline`).

Final-word latency = wall time the Final holding a word was returned - wall time the chunk
holding the end of the word was sent. Stable-word latency counts a word from when it first
appears as final *or* in a high-stability interim (text the session will not revise). Word end
times come from a reference alignment (offline faster-whisper, beam 5, word timestamps)
matched to the output words, so every system is measured against the same clock marks rather
than its own timestamps.

Usage: ``python bench/streaming_latency.py [--audio PATH] [--repeat N] [--concat N]``.
"""
from __future__ import annotations

import argparse
import math
import queue
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import av
import jiwer
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO))

from faster_whisper import WhisperModel

from violet_grpc.miner.engines.asr import (
    SAMPLE_RATE,
    Final,
    Interim,
    Segment,
    StreamEvent,
    StreamOptions,
    StreamSession,
    Word,
)
from violet_grpc.miner.engines.faster_whisper_engine import FasterWhisperEngine
from violet_grpc.miner.engines.streaming_decoder import (
    StreamingDecoder,
    StreamTuning,
)

DEFAULT_AUDIO = REPO.parent / "shared" / "fixtures" / "jfk.flac"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
GOAL_MEDIAN_S = 1.0
#: Interims at or above this stability hold agreed words that will not change.
STABLE = 0.9


@dataclass(frozen=True)
class RefWord:
    """A reference word with its time span in the audio (seconds)."""

    text: str
    start: float
    end: float


# -- audio -------------------------------------------------------------------------------


def load_audio(path: Path) -> np.ndarray:
    """Decode any file PyAV reads to float32 mono 16 kHz."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    parts: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32)


def concat(clip: np.ndarray, times: int, gap_s: float = 1.0) -> np.ndarray:
    """The clip ``times`` times with ``gap_s`` of silence after each copy."""
    gap = np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([part for _ in range(times) for part in (clip, gap)])


def normalize(text: str) -> list[str]:
    """Lower case, punctuation dropped (apostrophes kept): how WER is scored here."""
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def reference_words(model: WhisperModel, audio: np.ndarray) -> list[RefWord]:
    """Word timings from an offline beam-5 transcription: the clock marks latency uses."""
    segments, _ = model.transcribe(audio, beam_size=5, word_timestamps=True, language="en")
    return [
        RefWord(w.word.strip(), float(w.start), float(w.end))
        for s in segments
        for w in (s.words or ())
    ]


# -- measurement harness -----------------------------------------------------------------


@dataclass
class _Run:
    """What one real-time run recorded."""

    events: list[tuple[float, StreamEvent]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    busy_s: float = 0.0
    start: float = 0.0
    end: float = 0.0


def _feed(chunks: Sequence[np.ndarray], chunk_s: float, run: _Run, out: queue.Queue) -> None:
    """Push each chunk once its last sample has 'been spoken' on the wall clock."""
    for index, chunk in enumerate(chunks):
        delay = run.start + (index + 1) * chunk_s - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        run.sent[index] = time.perf_counter()
        out.put(chunk)
    out.put(None)


def _drain(inbox: queue.Queue) -> tuple[list[np.ndarray], bool]:
    """Block for one item, then take whatever else has arrived (coalescing)."""
    items = [inbox.get()]
    while True:
        try:
            items.append(inbox.get_nowait())
        except queue.Empty:
            break
    done = items[-1] is None
    return [i for i in items if i is not None], done


def _record(run: _Run, call: Callable[[], list[StreamEvent]]) -> None:
    began = time.perf_counter()
    events = call()
    now = time.perf_counter()
    run.busy_s += now - began
    run.events += [(now, e) for e in events]


def _run_realtime(session: StreamSession, audio: np.ndarray, chunk_ms: int) -> _Run:
    size = int(SAMPLE_RATE * chunk_ms / 1000)
    chunks = [audio[i : i + size] for i in range(0, audio.size, size)]
    run = _Run(sent=[0.0] * len(chunks), start=time.perf_counter())
    inbox: queue.Queue = queue.Queue()
    feeder = threading.Thread(target=_feed, args=(chunks, chunk_ms / 1000, run, inbox))
    feeder.start()
    done = False
    while not done:
        pending, done = _drain(inbox)
        if pending:
            _record(run, partial(session.accept, np.concatenate(pending)))
    _record(run, session.finish)
    run.end = time.perf_counter()
    feeder.join()
    return run


def _sent_at(run: _Run, seconds: float, chunk_ms: int) -> float:
    """Wall time the chunk holding the sample at ``seconds`` was sent."""
    index = math.ceil(seconds * 1000 / chunk_ms) - 1
    return run.sent[min(max(index, 0), len(run.sent) - 1)]


def _final_words(run: _Run) -> list[tuple[float, Word]]:
    """Every final word with the wall time its Final was returned."""
    words: list[tuple[float, Word]] = []
    for wall, event in run.events:
        if isinstance(event, Final):
            words += [(wall, w) for w in _words_of(event.segment)]
    return words


def _words_of(segment: Segment) -> tuple[Word, ...]:
    if segment.words:
        return segment.words
    return tuple(Word(t, segment.start, segment.end, 1.0) for t in segment.text.split())


def _stable_words(run: _Run) -> list[tuple[float, str]]:
    """Words in the order they first became stable: final, or in a high-stability interim.

    Interims with stability >= ``STABLE`` carry the agreed words of the current utterance,
    which the session never revises (they are forced as the decoder prefix), so a user can
    treat them as settled text before the pause makes them Final.
    """
    shown: list[tuple[float, str]] = []
    finals: list[str] = []
    agreed: list[str] = []
    for wall, event in run.events:
        if isinstance(event, Final):
            finals += normalize(event.segment.text)
            agreed = []
        elif isinstance(event, Interim) and event.stability >= STABLE:
            agreed = normalize(event.text)
        current = finals + agreed
        shown += [(wall, word) for word in current[len(shown) :]]
    return shown


def _matched(ref: list[str], hyp: list[str]) -> list[tuple[int, int]]:
    """Index pairs of equal words in the Levenshtein alignment of hypothesis to reference.

    A global alignment, not difflib's longest blocks: with repeated content (``--concat``) a
    missing word must not make the rest match another copy of the clip.
    """
    if not ref or not hyp:
        return []
    output = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return [
        (chunk.ref_start_idx + k, chunk.hyp_start_idx + k)
        for chunk in output.alignments[0]
        if chunk.type == "equal"
        for k in range(chunk.ref_end_idx - chunk.ref_start_idx)
    ]


def _against_reference(
    run: _Run, shown: list[tuple[float, str]], reference: Sequence[RefWord], chunk_ms: int
) -> list[float]:
    ref = ["_".join(normalize(w.text)) or "_" for w in reference]
    hyp = ["_".join(normalize(text)) or "_" for _, text in shown]
    return [
        shown[h][0] - _sent_at(run, reference[r].end, chunk_ms) for r, h in _matched(ref, hyp)
    ]


def _latencies(run: _Run, chunk_ms: int, reference: Sequence[RefWord] | None) -> list[float]:
    finals = _final_words(run)
    if reference is None:
        return [wall - _sent_at(run, w.end, chunk_ms) for wall, w in finals]
    return _against_reference(run, [(wall, w.text) for wall, w in finals], reference, chunk_ms)


def _first_partial(run: _Run, chunk_ms: int, reference: Sequence[RefWord] | None) -> float:
    """Seconds from the first spoken word (or the stream start) to the first text shown."""
    origin = _sent_at(run, reference[0].start, chunk_ms) if reference else run.start
    for wall, event in run.events:
        if isinstance(event, Interim) and event.text.strip():
            return wall - origin
        if isinstance(event, Final) and event.segment.text.strip():
            return wall - origin
    return math.nan


def _stats(latencies: list[float]) -> tuple[float, float]:
    if not latencies:
        return math.nan, math.nan
    return statistics.median(latencies), float(np.percentile(latencies, 90))


def measure_stream(
    session_factory: Callable[[], StreamSession],
    audio: np.ndarray,
    chunk_ms: int = 100,
    *,
    reference: Sequence[RefWord] | None = None,
    reference_text: str | None = None,
) -> dict:
    """Feed ``audio`` in real time to a fresh session and measure what a user would see.

    Args:
        session_factory: Builds the session (called before the clock starts).
        audio: float32 mono 16 kHz.
        chunk_ms: Size of the chunks the feeder sends.
        reference: Word timings to measure latency against; without it, each system's own
            final word end times are used (and stable-word latency is not measured).
        reference_text: Transcript for WER; without it WER is NaN.

    Returns:
        ``latencies`` (s, per final word) with their ``median`` and ``p90``;
        ``stable_latencies`` / ``stable_median`` / ``stable_p90`` (until the word is final or
        in a high-stability interim); ``first_partial`` (s from the first word to the first
        text); ``wer``; ``rtf`` (compute time / audio time); ``backlog`` (s behind real time
        after ``finish``); ``text`` (all final text) and ``finals`` (count).
    """
    session = session_factory()
    run = _run_realtime(session, audio, chunk_ms)
    latencies = _latencies(run, chunk_ms, reference)
    stable = _against_reference(run, _stable_words(run), reference, chunk_ms) if reference else []
    text = " ".join(e.segment.text for _, e in run.events if isinstance(e, Final))
    wer = math.nan
    if reference_text is not None:
        hypothesis = " ".join(normalize(text)) or "-"
        wer = float(jiwer.wer(" ".join(normalize(reference_text)), hypothesis))
    median, p90 = _stats(latencies)
    stable_median, stable_p90 = _stats(stable)
    return {
        "latencies": latencies,
        "median": median,
        "p90": p90,
        "stable_latencies": stable,
        "stable_median": stable_median,
        "stable_p90": stable_p90,
        "first_partial": _first_partial(run, chunk_ms, reference),
        "wer": wer,
        "rtf": run.busy_s / (audio.size / SAMPLE_RATE),
        "backlog": run.end - run.sent[-1],
        "text": text,
        "finals": sum(isinstance(e, Final) for _, e in run.events),
    }


# -- the whisper_streaming baseline ------------------------------------------------------


@dataclass
class _TimedWord:
    start: float
    end: float
    text: str


class LocalAgreementBaseline:
    """whisper_streaming's OnlineASRProcessor (LocalAgreement-2, segment trimming).

    Re-decodes the whole growing buffer with faster-whisper's ``transcribe`` (30 s padding,
    beam 5) whenever at least ``min_chunk_s`` of new audio arrived, commits the prefix on which
    the last two hypotheses agree (emitted as Final: whisper_streaming never revises it),
    prompts with committed text that left the buffer, and trims the buffer at the end of a
    completed segment once it exceeds ``trim_s``.
    """

    def __init__(
        self,
        model: WhisperModel,
        language: str = "en",
        min_chunk_s: float = 1.0,
        trim_s: float = 15.0,
        beam_size: int = 5,
    ) -> None:
        self._model = model
        self._language = language
        self._min_chunk = int(min_chunk_s * SAMPLE_RATE)
        self._trim_s = trim_s
        self._beam_size = beam_size
        self._buffer = np.zeros(0, dtype=np.float32)
        self._offset = 0.0  # stream time of buffer[0]
        self._unprocessed = 0
        self._samples = 0
        self._committed: list[_TimedWord] = []  # all committed words
        self._in_buffer: list[_TimedWord] = []  # committed words whose audio is buffered
        self._tentative: list[_TimedWord] = []  # last hypothesis beyond the commit
        self._last_time = 0.0

    @property
    def language(self) -> str:
        return self._language

    @property
    def audio_seconds(self) -> float:
        return self._samples / SAMPLE_RATE

    def accept(self, pcm: np.ndarray) -> list[StreamEvent]:
        """Buffer audio; run one iteration once a minimum chunk has arrived."""
        self._buffer = np.concatenate([self._buffer, pcm.astype(np.float32)])
        self._samples += pcm.size
        self._unprocessed += pcm.size
        if self._unprocessed < self._min_chunk:
            return []
        self._unprocessed = 0
        return self._process_iter()

    def finish(self) -> list[StreamEvent]:
        """Flush the tentative tail as final, as whisper_streaming's ``finish`` does."""
        if self._unprocessed:
            self._unprocessed = 0
            events = self._process_iter()
        else:
            events = []
        return events + self._emit(self._tentative)

    def _process_iter(self) -> list[StreamEvent]:
        segments, _ = self._model.transcribe(
            self._buffer,
            language=self._language,
            initial_prompt=self._prompt(),
            beam_size=self._beam_size,
            word_timestamps=True,
            condition_on_previous_text=True,
        )
        segments = list(segments)
        words = [
            _TimedWord(float(w.start) + self._offset, float(w.end) + self._offset, w.word)
            for s in segments if s.no_speech_prob <= 0.9
            for w in (s.words or ())
        ]
        commit = self._insert_and_flush(words)
        events = self._emit(commit)
        if self._buffer.size / SAMPLE_RATE > self._trim_s:
            self._trim_at_segment([float(s.end) + self._offset for s in segments])
        return events

    def _insert_and_flush(self, words: list[_TimedWord]) -> list[_TimedWord]:
        new = [w for w in words if w.start > self._last_time - 0.1]
        new = self._drop_committed_ngram(new)
        commit: list[_TimedWord] = []
        while new and self._tentative and new[0].text == self._tentative[0].text:
            commit.append(new.pop(0))
            self._tentative.pop(0)
        if commit:
            self._last_time = commit[-1].end
        self._tentative = new
        self._committed += commit
        self._in_buffer += commit
        return commit

    def _drop_committed_ngram(self, new: list[_TimedWord]) -> list[_TimedWord]:
        """Skip words at the head of ``new`` that repeat the tail of the committed text."""
        if not new or abs(new[0].start - self._last_time) >= 1 or not self._in_buffer:
            return new
        for n in range(min(len(self._in_buffer), len(new), 5), 0, -1):
            tail = " ".join(w.text for w in self._in_buffer[-n:])
            head = " ".join(w.text for w in new[:n])
            if tail == head:
                return new[n:]
        return new

    def _trim_at_segment(self, ends: list[float]) -> None:
        if not self._committed or len(ends) < 2:
            return
        last = self._committed[-1].end
        candidates = [e for e in ends[:-1] if e <= last]
        if not candidates:
            return
        cut = candidates[-1]
        self._in_buffer = [w for w in self._in_buffer if w.end > cut]
        drop = int((cut - self._offset) * SAMPLE_RATE)
        self._buffer = self._buffer[drop:]
        self._offset = cut

    def _prompt(self) -> str:
        """Committed text whose audio already left the buffer, last 200 characters."""
        outside = self._committed[: len(self._committed) - len(self._in_buffer)]
        return "".join(w.text for w in outside)[-200:]

    def _emit(self, words: list[_TimedWord]) -> list[StreamEvent]:
        if not words:
            return []
        text = "".join(w.text for w in words).strip()
        timed = tuple(Word(w.text.strip(), w.start, w.end, 1.0) for w in words)
        return [Final(Segment(text, words[0].start, words[-1].end, timed), 0)]


# -- report ------------------------------------------------------------------------------


def _pooled(results: list[dict]) -> dict:
    """Latencies pooled over runs (median/p90 of every word); other metrics averaged."""
    pooled: dict = {}
    for key in ("", "stable_"):
        latencies = [x for r in results for x in r[f"{key}latencies"]]
        pooled[f"{key}median"], pooled[f"{key}p90"] = _stats(latencies)
        pooled[f"{key}words"] = len(latencies)
    pooled["first_partial"] = statistics.median(r["first_partial"] for r in results)
    for key in ("wer", "rtf", "backlog"):
        pooled[key] = statistics.mean(r[key] for r in results)
    return pooled


_ROWS = (
    ("final-word latency median (s)", "median"),
    ("final-word latency p90 (s)", "p90"),
    ("stable-word latency median (s)", "stable_median"),
    ("stable-word latency p90 (s)", "stable_p90"),
    ("first partial text (s)", "first_partial"),
    ("WER", "wer"),
    ("compute RTF", "rtf"),
    ("behind real time at end (s)", "backlog"),
    ("final words measured", "words"),
)


def _table(pooled: dict[str, dict], title: str) -> str:
    """One column per system, then each system's ratio to the last one (the baseline)."""
    names = list(pooled)
    ratios = [f"{n}/{names[-1]}" for n in names[:-1]]
    width = max(len(h) for h in names + ratios) + 2
    lines = [title, f"{'metric':31}" + "".join(f"{h:>{width}}" for h in names + ratios)]
    for label, key in _ROWS:
        values = [pooled[n][key] for n in names]
        style = "d" if key == "words" else ".3f"
        cells = "".join(f"{v:{width}{style}}" for v in values)
        cells += "".join(
            f"{v / values[-1]:{width}.2f}" if values[-1] else f"{'-':>{width}}" for v in values[:-1]
        )
        lines.append(f"{label:31}{cells}")
    for name in names[:-1]:
        verdict = "PASS" if pooled[name]["median"] < GOAL_MEDIAN_S else "FAIL"
        lines.append(f"goal: {name} final-word median < {GOAL_MEDIAN_S:.1f} s -> {verdict}")
    return "\n".join(lines)


def _systems(engine: FasterWhisperEngine) -> dict[str, Callable[[], StreamSession]]:
    """Violet as specified, Violet sending agreed words as Final, and the baseline (last)."""
    options = StreamOptions(language="en")
    agreed = StreamTuning(finalize_agreed=True)
    return {
        "violet": lambda: engine.open_stream(options),
        "violet-agreed": lambda: StreamingDecoder(engine.whisper_model, options, agreed),
        "baseline": lambda: LocalAgreementBaseline(engine.whisper_model),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO)
    parser.add_argument("--text", help="reference transcript of --audio (default: jfk's)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per system")
    parser.add_argument("--concat", type=int, default=1, help="clip copies, 1 s silence apart")
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)

    engine = FasterWhisperEngine(args.model, device="cpu", compute_type=args.compute_type,
                                 cpu_threads=args.threads)
    clip = load_audio(args.audio)
    audio = concat(clip, args.concat) if args.concat > 1 else clip
    text = args.text or (JFK_TEXT if args.audio == DEFAULT_AUDIO else None)
    reference = reference_words(engine.whisper_model, audio)  # also warms the model up
    reference_text = " ".join([text] * args.concat) if text else None
    if reference_text is None:  # no transcript given: score against the offline decode
        reference_text = " ".join(w.text for w in reference)
    systems = _systems(engine)
    results: dict[str, list[dict]] = {name: [] for name in systems}
    for _ in range(args.repeat):
        for name, factory in systems.items():  # interleaved, so noise hits all alike
            result = measure_stream(factory, audio, args.chunk_ms, reference=reference,
                                    reference_text=reference_text)
            results[name].append(result)
            print(f"{name:14} median {result['median']:.3f}s p90 {result['p90']:.3f}s "
                  f"WER {result['wer']:.3f} RTF {result['rtf']:.2f}: {result['text'][:60]}",
                  flush=True)
    title = (f"{args.audio.name} x{args.concat} ({audio.size / SAMPLE_RATE:.1f} s), "
             f"{engine.name} {engine.compute_type}, {args.repeat} run(s), "
             f"{args.chunk_ms} ms chunks, real-time feed")
    print(_table({name: _pooled(runs) for name, runs in results.items()}, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
