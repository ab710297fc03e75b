"""Low-latency streaming transcription on top of CTranslate2's Whisper model.

Why not faster-whisper's ``transcribe`` in a loop: it pads every decode to 30 s of audio, so a
decode of a 2 s buffer costs as much as a 30 s one (about 0.6 s on two cores) and a real-time
stream falls behind. This session encodes only the current utterance plus a few seconds of
padding (less than ~2 s makes tiny.en loop), decodes greedily every ``step_ms``, commits the
words two consecutive hypotheses agree on (LocalAgreement-2) and finalizes the whole utterance
as soon as Silero VAD hears a pause of ``endpoint_silence_ms``. Final words therefore arrive
well under a second after their audio, and the cost per step does not grow with the stream.

Invariants that keep tiny models out of repetition loops:
- the prompt (``<|startofprev|>`` context) only holds text whose audio has left the buffer;
- committed words are forced as the decoder *prefix*, which matches the buffer's audio;
- a phrase the decode says twice in a row is cut at the copy; decodes with short n-grams
  repeated, a high compression ratio or that hit the token cap are dropped (after one retry
  without earlier text in the prompt);
- nothing is decoded unless VAD has heard speech: silence never reaches the model.
"""
from __future__ import annotations

import string
import zlib
from dataclasses import dataclass, field, replace

import numpy as np
from ctranslate2 import StorageView
from ctranslate2.models import WhisperGenerationResult
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import merge_punctuations
from faster_whisper.vad import get_vad_model

from violet_grpc.errors import InvalidArgument
from violet_grpc.miner.engines.asr import (
    SAMPLE_RATE,
    Final,
    Interim,
    Segment,
    StreamEvent,
    StreamOptions,
    UtteranceEnd,
    Word,
)

_VAD_WINDOW = 512  # Silero v6 takes 32 ms windows at 16 kHz.
_VAD_CONTEXT = 64  # ...each preceded by the last 4 ms of the previous one.
_WINDOW_S = 30  # Whisper's encoder takes at most 30 s
_MAX_STEP_MS = 2000  # a longer step would not be streaming any more
_DETECT_LANGUAGE_S = 1.0  # audio a multilingual model hears before it names the language
_PREPEND_PUNCTUATIONS = "\"'“¿([{-"
_APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True)
class StreamTuning:
    """Knobs of the streaming policy; the defaults are the measured sweet spot (DESIGN §7).

    Attributes:
        padding_s: Zero audio appended before encoding; under ~2 s tiny.en loops.
        max_buffer_s: Past this, committed words are finalized and their audio dropped.
        hard_buffer_s: Past this, the whole hypothesis is finalized even if nothing agreed.
        tokens_per_second: Generation cap per second of audio (plus ``extra_tokens``).
        extra_tokens: Fixed allowance added to the token cap.
        preroll_s: Audio kept before the VAD onset, because Silero triggers a little late.
        vad_threshold: Silero probability that starts speech.
        vad_neg_threshold: Probability under which speech stops (hysteresis).
        committed_stability: Stability reported for agreed-on words.
        tentative_stability: Stability reported for the tail that may still change.
        compression_ratio_threshold: gzip ratio above which a decode counts as a loop.
        prompt_tokens: How many tokens of earlier final text condition the decoder.
        beam_size: Beam width of the step decodes (greedy keeps a step cheap).
        final_beam_size: Beam width of the decode that finalizes an utterance on which no
            words were agreed yet (short ones, or audio that arrived in one piece): that
            decode alone decides the text, so it searches wider. With agreed words forced as
            the prefix, greedy (``beam_size``) is enough and keeps the pause-to-final short.
        finalize_agreed: Emit agreed words as :class:`Final` at once (whisper_streaming's
            semantics) instead of as high-stability interims until the pause. Agreed words
            are forced as the decoder prefix, so they never change either way; this only
            decides which event carries them. On by default: words become final as soon as
            two decodes agree (median ~0.6 s after they are spoken) rather than at the pause
            (~1.2 s), and clients that only read finals see text flowing mid-utterance.
    """

    padding_s: float = 6.0
    max_buffer_s: float = 10.0
    hard_buffer_s: float = 15.0
    tokens_per_second: float = 8.0
    extra_tokens: int = 10
    preroll_s: float = 0.3
    vad_threshold: float = 0.5
    vad_neg_threshold: float = 0.35
    committed_stability: float = 0.9
    tentative_stability: float = 0.3
    compression_ratio_threshold: float = 2.4
    prompt_tokens: int = 64
    beam_size: int = 1
    final_beam_size: int = 5
    finalize_agreed: bool = True

    def __post_init__(self) -> None:
        # An utterance may reach hard_buffer_s plus one step before it is cut; with the
        # padding it must still fit the encoder's 30 s window.
        limit = _WINDOW_S - self.padding_s - _MAX_STEP_MS / 1000
        if not 0 < self.max_buffer_s <= self.hard_buffer_s <= limit:
            raise InvalidArgument(
                f"stream tuning needs 0 < max_buffer_s <= hard_buffer_s <= {limit:g}",
                reason="INVALID_STREAM_TUNING",
                metadata={"max_buffer_s": str(self.max_buffer_s), "hard_buffer_s": str(self.hard_buffer_s)},
            )


class StreamingVad:
    """Silero VAD fed incrementally, keeping its recurrent state between calls.

    faster-whisper's ``SileroVADModel.__call__`` restarts the LSTM state on every call, so
    running it on each new chunk would forget context and re-running it on the whole buffer
    would cost more every step; this keeps ``h``/``c`` and the 64-sample context instead (the
    probabilities equal one batch call over the same audio).
    """

    def __init__(self, threshold: float, neg_threshold: float) -> None:
        self._session = get_vad_model().session
        self._threshold = threshold
        self._neg_threshold = neg_threshold
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_VAD_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._in_speech = False
        self._rise = -1  # where probabilities last rose above the lower threshold
        #: Samples classified so far (a multiple of the window).
        self.processed = 0
        #: Sample index where the first speech since :meth:`rearm` started, or -1.
        self.onset = -1
        #: Sample index where the latest speech run started, or -1.
        self.run_start = -1
        #: Sample index where the latest speech run ended (or ``processed`` while in speech).
        self.run_end = -1

    def push(self, pcm: np.ndarray) -> None:
        """Classify every complete window of new audio."""
        audio = np.concatenate([self._pending, pcm]) if self._pending.size else pcm
        usable = audio.size - audio.size % _VAD_WINDOW
        self._pending = audio[usable:].copy()
        if usable:
            self._update(self._probabilities(audio[:usable]))

    def _probabilities(self, audio: np.ndarray) -> np.ndarray:
        windows = audio.reshape(-1, _VAD_WINDOW)
        previous = np.concatenate([self._context[None], windows[:-1, -_VAD_CONTEXT:]], axis=0)
        self._context = windows[-1, -_VAD_CONTEXT:].copy()
        batch = np.concatenate([previous, windows], axis=1).astype(np.float32, copy=False)
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def _update(self, probabilities: np.ndarray) -> None:
        for probability in probabilities:
            start = self.processed
            self.processed += _VAD_WINDOW
            if probability < self._neg_threshold:
                self._in_speech = False
                self._rise = -1
                continue
            if self._rise < 0:
                self._rise = start  # speech often fades in below the threshold
            if probability >= self._threshold and not self._in_speech:
                self._in_speech = True
                self.run_start = self._rise
                if self.onset < 0:
                    self.onset = self._rise
            if self._in_speech:
                self.run_end = self.processed

    def rearm(self) -> None:
        """Forget speech heard so far: :attr:`onset` will be the next speech (or this one)."""
        self.onset = self.run_start if self._in_speech else -1

    def silence_after_speech(self) -> int:
        """Samples of silence since the latest speech ended (0 while speaking)."""
        if self._in_speech or self.run_end < 0:
            return 0
        return self.processed - self.run_end


@dataclass
class _Hypothesis:
    """One decode of the current buffer, split into words (each a list of token ids)."""

    words: list[str]
    tokens: list[list[int]]

    def text(self, start: int = 0, stop: int | None = None) -> str:
        return "".join(self.words[start:stop]).strip()

    def flat(self, start: int = 0, stop: int | None = None) -> list[int]:
        return [token for word in self.tokens[start:stop] for token in word]


@dataclass
class _Utterance:
    """The speech being decoded: its audio and what the decodes agreed on so far."""

    start: int  # absolute sample index of buffer[0]
    audio: list[np.ndarray] = field(default_factory=list)
    previous: _Hypothesis | None = None  # latest usable decode
    committed: int = 0  # words of ``previous`` two decodes agreed on: the next prefix
    finalized: int = 0  # words of ``previous`` already sent as Final (<= committed)
    decoded_until: int = 0  # absolute sample index the latest step had seen
    had_text: bool = False
    trimmed_tail: list[str] = field(default_factory=list)  # last words cut off by a trim


class StreamingDecoder:
    """A :class:`~violet_grpc.miner.engines.asr.StreamSession` over a loaded Whisper model.

    Args:
        model: The loaded faster-whisper model (its ``.model`` is the CTranslate2 Whisper).
        options: What the client asked for.
        tuning: Policy knobs; the defaults are the measured ones.

    Raises:
        InvalidArgument: For an unsupported language or non-positive step/endpoint times.
    """

    def __init__(
        self, model: WhisperModel, options: StreamOptions, tuning: StreamTuning | None = None
    ) -> None:
        _check_timing(options)
        self._model = model
        self._options = options
        self._tuning = tuning or StreamTuning()
        self._multilingual = bool(model.model.is_multilingual)
        self._language = "" if self._multilingual else "en"
        if options.language:
            self._language = _check_language(model, options.language)
        self._tokenizer = self._make_tokenizer()
        self._vad = StreamingVad(self._tuning.vad_threshold, self._tuning.vad_neg_threshold)
        self._samples = 0
        self._idle: list[np.ndarray] = []  # pre-roll kept while nobody speaks
        self._utterance: _Utterance | None = None
        self._utterance_index = 0
        self._history: list[int] = []  # final tokens whose audio has left the buffer
        self._final_end = 0.0  # stream time where the latest Final ended
        self._finished = False

    @property
    def language(self) -> str:
        """ISO 639-1 code of the stream; empty until a multilingual model has detected it."""
        return self._language

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio accepted so far."""
        return self._samples / SAMPLE_RATE

    def accept(self, pcm: np.ndarray) -> list[StreamEvent]:
        """Buffer audio; decode when a step of new audio has arrived or a pause ended speech.

        Args:
            pcm: float32 mono 16 kHz samples (several coalesced chunks are fine).

        Returns:
            Events that became known, in order.

        Raises:
            InvalidArgument: If ``pcm`` is not 1-D float audio, or the stream has finished.
        """
        if self._finished:
            raise InvalidArgument("the stream has already finished", reason="STREAM_FINISHED")
        audio = _as_pcm(pcm)
        step = self._ms_to_samples(self._options.step_ms)
        events: list[StreamEvent] = []
        for start in range(0, audio.size, step):
            backlog = start + step < audio.size
            events += self._advance(audio[start : start + step], backlog)
        return events

    def _advance(self, audio: np.ndarray, backlog: bool) -> list[StreamEvent]:
        """Take at most one step of audio: VAD, buffer, then an endpoint or a decode step.

        With more audio queued behind it in the same call (a replay after fail-over, say)
        a step's interims would be stale before anyone saw them, so only endpoints and the
        steps a long buffer needs to agree on words and trim are run.
        """
        self._samples += audio.size
        self._vad.push(audio)
        self._buffer(audio)
        utterance = self._utterance
        if utterance is None:
            return []
        if self._vad.silence_after_speech() >= self._ms_to_samples(self._options.endpoint_silence_ms):
            return self._end_utterance(endpoint=True)
        due = self._samples - utterance.decoded_until >= self._ms_to_samples(self._options.step_ms)
        long = self._samples - utterance.start > self._tuning.max_buffer_s * SAMPLE_RATE
        if due and (long or not backlog):
            return self._step()
        return []

    def finish(self) -> list[StreamEvent]:
        """Finalize whatever is still pending; later ``accept`` calls are refused."""
        if self._finished:
            return []
        self._finished = True
        if self._utterance is None:
            return []
        return self._end_utterance(endpoint=True)

    # -- buffering -------------------------------------------------------------------------

    def _buffer(self, audio: np.ndarray) -> None:
        """Append to the utterance, or keep a short pre-roll until VAD hears speech."""
        if self._utterance is not None:
            self._utterance.audio.append(audio)
            return
        idle = np.concatenate([*self._idle, audio])
        idle_start = self._samples - idle.size
        if self._vad.onset >= 0:
            onset = max(self._vad.onset - self._preroll_samples(), idle_start)
            self._utterance = _Utterance(start=onset, audio=[idle[onset - idle_start :]])
            self._utterance.decoded_until = onset
            self._idle = []
        else:
            self._idle = [idle[idle.size - self._preroll_samples() :]]

    def _utterance_audio(self, utterance: _Utterance) -> np.ndarray:
        audio = np.concatenate(utterance.audio)
        utterance.audio = [audio]
        return audio

    # -- policy ----------------------------------------------------------------------------

    def _step(self) -> list[StreamEvent]:
        """Decode the utterance so far, grow the agreed prefix, trim if the buffer is long."""
        utterance = self._utterance
        assert utterance is not None
        utterance.decoded_until = self._samples
        audio = self._utterance_audio(utterance)
        if not self._language and audio.size < _DETECT_LANGUAGE_S * SAMPLE_RATE:
            return []  # too little speech to tell the language from yet
        encoded = self._encode(audio)
        hypothesis = self._decode(encoded, audio.size, utterance, self._tuning.beam_size)
        if hypothesis is not None:
            self._agree(utterance, hypothesis)
        events: list[StreamEvent] = []
        if self._tuning.finalize_agreed and utterance.committed > utterance.finalized:
            events += self._finalize(encoded, audio, utterance.committed)[0]
        if audio.size > self._tuning.max_buffer_s * SAMPLE_RATE and utterance.committed:
            events += self._trim(encoded, audio)
        if self._samples - utterance.start > self._tuning.hard_buffer_s * SAMPLE_RATE:
            return events + self._end_utterance(endpoint=False)  # nothing to trim at: give up
        if self._options.interim_results and hypothesis is not None:
            events += self._interims()
        return events

    def _agree(self, utterance: _Utterance, hypothesis: _Hypothesis) -> None:
        """LocalAgreement-2: words equal in this and the previous decode become committed."""
        previous = utterance.previous
        agreed = utterance.committed
        if previous is not None:
            limit = min(len(previous.tokens), len(hypothesis.tokens))
            while agreed < limit and previous.tokens[agreed] == hypothesis.tokens[agreed]:
                agreed += 1
            # The newest word may still grow ("country" -> "country's"), and punctuation
            # must stay with the word before it: both wait for the next decode.
            if agreed == len(hypothesis.tokens) and agreed > 0:
                agreed -= 1
            while agreed > utterance.committed and _is_punctuation(hypothesis.words[agreed]):
                agreed -= 1
        utterance.committed = max(utterance.committed, agreed)
        utterance.previous = hypothesis

    def _end_utterance(self, endpoint: bool) -> list[StreamEvent]:
        """Decode the utterance once more (agreed words as prefix) and finalize all of it."""
        utterance = self._utterance
        assert utterance is not None
        audio = self._utterance_audio(utterance)
        encoded = self._encode(audio)
        beam = self._tuning.beam_size if utterance.committed else self._tuning.final_beam_size
        hypothesis = self._decode(encoded, audio.size, utterance, beam)
        if hypothesis is not None:
            utterance.previous = hypothesis
        events: list[StreamEvent] = []
        if utterance.previous is not None:
            events, _ = self._finalize(encoded, audio, len(utterance.previous.words))
            self._remember(utterance.previous.flat())
        if endpoint and utterance.had_text:
            events.append(UtteranceEnd(time=self.audio_seconds, utterance_index=self._utterance_index))
            self._utterance_index += 1
        self._utterance = None
        self._idle = [audio[audio.size - self._preroll_samples() :]] if endpoint else []
        self._vad.rearm()
        return events

    def _trim(self, encoded: StorageView, audio: np.ndarray) -> list[StreamEvent]:
        """The buffer got long: finalize the agreed words and drop their audio."""
        utterance = self._utterance
        assert utterance is not None and utterance.previous is not None
        events, cut_time = self._finalize(encoded, audio, utterance.committed)
        hypothesis, committed = utterance.previous, utterance.committed
        cut = min(max(round(cut_time * SAMPLE_RATE) - utterance.start, 0), audio.size)
        self._remember(hypothesis.flat(0, committed))
        utterance.audio = [audio[cut:]]
        utterance.start += cut
        utterance.previous = _Hypothesis(hypothesis.words[committed:], hypothesis.tokens[committed:])
        utterance.trimmed_tail = _normalized(hypothesis.words[max(committed - 3, 0) : committed])
        utterance.committed = utterance.finalized = 0
        return events

    def _finalize(
        self, encoded: StorageView, audio: np.ndarray, upto: int
    ) -> tuple[list[StreamEvent], float]:
        """Send words ``[finalized, upto)`` of the latest decode as one Final.

        Returns:
            The events (none if nothing new) and the stream time where word ``upto`` - 1 ends.
        """
        utterance = self._utterance
        assert utterance is not None and utterance.previous is not None
        hypothesis = utterance.previous
        offset = utterance.start / SAMPLE_RATE
        aligned = self._align(encoded, audio.size, hypothesis.flat(0, upto), offset)
        end_time = aligned[-1][1].end if aligned else offset
        if upto <= utterance.finalized:
            return [], end_time
        done = len(hypothesis.flat(0, utterance.finalized))
        words = self._after_last_final(tuple(word for first, word in aligned if first >= done))
        text = hypothesis.text(utterance.finalized, upto)
        utterance.finalized = upto
        if not text:
            return [], end_time
        utterance.had_text = True
        start = words[0].start if words else max(offset, self._final_end)
        end = words[-1].end if words else max(self.audio_seconds, start)
        self._final_end = end
        segment = Segment(text, start, end, words if self._options.word_timestamps else ())
        return [Final(segment=segment, utterance_index=self._utterance_index)], end_time

    def _after_last_final(self, words: tuple[Word, ...]) -> tuple[Word, ...]:
        """Each alignment is computed on its own; keep times monotonic across Finals."""
        floor = self._final_end
        fixed: list[Word] = []
        for word in words:
            start = max(word.start, floor)
            floor = max(word.end, start)
            fixed.append(replace(word, start=start, end=floor))
        return tuple(fixed)

    def _interims(self) -> list[StreamEvent]:
        """Agreed-but-not-final words (high stability), then the tail; times estimated."""
        utterance = self._utterance
        assert utterance is not None and utterance.previous is not None
        hypothesis = utterance.previous
        stable = hypothesis.text(utterance.finalized, utterance.committed)
        tail = hypothesis.text(utterance.committed)
        start, end = utterance.start / SAMPLE_RATE, self.audio_seconds
        split = start + (end - start) * len(stable) / max(len(stable) + len(tail), 1)
        events: list[StreamEvent] = []
        if stable:
            events.append(Interim(stable, self._tuning.committed_stability, start, split))
        if tail:
            events.append(Interim(tail, self._tuning.tentative_stability, split, end))
        return events

    def _remember(self, tokens: list[int]) -> None:
        """Final tokens whose audio left the buffer may now condition later decodes."""
        self._history = (self._history + tokens)[-self._tuning.prompt_tokens :]

    # -- model calls -----------------------------------------------------------------------

    def _encode(self, audio: np.ndarray) -> StorageView:
        """Encode the buffer plus ``padding_s`` of silence instead of a full 30 s window."""
        padding = np.zeros(int(self._tuning.padding_s * SAMPLE_RATE), dtype=np.float32)
        padded = np.concatenate([audio, padding])[: _WINDOW_S * SAMPLE_RATE]
        encoded = self._model.encode(self._model.feature_extractor(padded, padding=0))
        if not self._language:
            self._detect_language(encoded)
        return encoded

    def _detect_language(self, encoded: StorageView) -> None:
        """Multilingual model, no language given: detect it once, from the first speech."""
        best = self._model.model.detect_language(encoded)[0][0][0]
        self._language = best[2:-2]  # "<|de|>" -> "de"
        self._tokenizer = self._make_tokenizer()

    def _decode(
        self, encoded: StorageView, samples: int, utterance: _Utterance, beam_size: int
    ) -> _Hypothesis | None:
        """Decode with the agreed words forced as prefix; None if every try looped.

        Earlier final text in the prompt is what usually sets a tiny model repeating a phrase
        it heard before, so a looping decode is retried once without it.
        """
        prefix = utterance.previous.flat(0, utterance.committed) if utterance.previous else []
        cap = int(self._tuning.tokens_per_second * samples / SAMPLE_RATE) + self._tuning.extra_tokens
        if cap <= len(prefix):
            return None
        for with_history in (True, False):
            result = self._generate(encoded, prefix, cap, beam_size, with_history)
            hypothesis = self._usable(result, prefix, cap, utterance)
            if hypothesis is not None or not self._history:
                return hypothesis
        return None

    def _generate(
        self, encoded: StorageView, prefix: list[int], cap: int, beam_size: int, with_history: bool
    ) -> WhisperGenerationResult:
        prompt = self._prompt(with_history)
        # CTranslate2 returns prefix + generated tokens, at most min(max_length // 2,
        # max_length - context - 1) of them, context being the <|startofprev|> part
        # (openai-whisper's sample_len rule): size max_length so that ``cap`` fits.
        context = prompt.index(self._tokenizer.sot)
        max_length = min(max(2 * cap, context + 1 + cap), self._model.max_length)
        return self._model.model.generate(
            encoded,
            [prompt + prefix],
            beam_size=beam_size,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=not prefix,
            suppress_tokens=[-1],
        )[0]

    def _usable(
        self, result: WhisperGenerationResult, prefix: list[int], cap: int, utterance: _Utterance
    ) -> _Hypothesis | None:
        """Split a decode into words, cut a repeated phrase off, refuse runaway loops."""
        tokenizer = self._tokenizer
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        if not prefix and result.no_speech_prob > 0.6 and result.scores[0] < -1.0:
            return _Hypothesis([], [])
        words, word_tokens = tokenizer.split_to_word_tokens(tokens) if tokens else ([], [])
        keep = max(_repeat_start(words), utterance.committed)
        hypothesis = _Hypothesis(list(words[:keep]), [list(t) for t in word_tokens[:keep]])
        if len(tokens) >= cap and keep == len(words):
            return None  # hit the token cap without a phrase to cut at: a runaway decode
        if _looks_looped(tokenizer, hypothesis.flat(), self._tuning):
            return None
        if prefix:
            return hypothesis
        return _drop_repeated_head(hypothesis, utterance.trimmed_tail)

    def _prompt(self, with_history: bool = True) -> list[int]:
        """``<|startofprev|>`` hotwords, initial prompt and final text whose audio is gone."""
        tokenizer = self._tokenizer
        context: list[int] = []
        if self._options.hotwords:
            context += tokenizer.encode(" " + self._options.hotwords.strip())
        if self._options.initial_prompt:
            context += tokenizer.encode(" " + self._options.initial_prompt.strip())
        if with_history:
            context += self._history
        context = context[-(self._model.max_length // 2 - 1) :]
        prompt = [tokenizer.sot_prev, *context] if context else []
        return [*prompt, *tokenizer.sot_sequence, tokenizer.no_timestamps]

    def _align(
        self, encoded: StorageView, samples: int, tokens: list[int], offset: float
    ) -> list[tuple[int, Word]]:
        """Word times from cross-attention (``align``) in stream time.

        Returns:
            ``(index of the word's first token, word)`` pairs, punctuation merged into words.
        """
        if not tokens:
            return []
        frames = samples // self._model.feature_extractor.hop_length
        alignment = self._model.find_alignment(self._tokenizer, [tokens], encoded, frames)[0]
        first_tokens = np.cumsum([0] + [len(item["tokens"]) for item in alignment])
        merge_punctuations(alignment, _PREPEND_PUNCTUATIONS, _APPEND_PUNCTUATIONS)
        limit = offset + samples / SAMPLE_RATE
        words: list[tuple[int, Word]] = []
        cursor = offset
        for first, item in zip(first_tokens, alignment):
            if not item["word"].strip():
                continue
            start = min(max(float(item["start"]) + offset, cursor), limit)
            end = min(max(float(item["end"]) + offset, start), limit)
            probability = float(item["probability"])
            words.append((int(first), Word(item["word"].strip(), round(start, 3), round(end, 3), probability)))
            cursor = end
        return words

    def _make_tokenizer(self) -> Tokenizer:
        language = self._language or "en"
        return Tokenizer(self._model.hf_tokenizer, self._multilingual, task="transcribe", language=language)

    def _ms_to_samples(self, ms: int) -> int:
        return max(int(ms * SAMPLE_RATE / 1000), _VAD_WINDOW)

    def _preroll_samples(self) -> int:
        return int(self._tuning.preroll_s * SAMPLE_RATE)


def _check_language(model: WhisperModel, language: str) -> str:
    """Return ``language`` if the model knows it, else raise UNSUPPORTED_LANGUAGE."""
    if language not in model.supported_languages:
        raise InvalidArgument(
            f"language {language!r} is not supported by this model",
            reason="UNSUPPORTED_LANGUAGE",
            metadata={"language": language},
        )
    return language


def _check_timing(options: StreamOptions) -> None:
    """Steps of 1..2000 ms and a positive endpoint, else INVALID_STREAM_OPTIONS."""
    bounds = {"step_ms": (1, _MAX_STEP_MS), "endpoint_silence_ms": (1, None)}
    for name, (low, high) in bounds.items():
        value = getattr(options, name)
        if value < low or (high is not None and value > high):
            raise InvalidArgument(
                f"{name} must be between {low} and {high} ms" if high else f"{name} must be positive",
                reason="INVALID_STREAM_OPTIONS",
                metadata={"field": name, "value": str(value)},
            )


def _as_pcm(pcm: np.ndarray) -> np.ndarray:
    """Accept any 1-D float array as float32 samples."""
    audio = np.asarray(pcm)
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        raise InvalidArgument(
            "audio must be a 1-D float array of 16 kHz mono samples",
            reason="INVALID_AUDIO",
            metadata={"shape": str(audio.shape), "dtype": str(audio.dtype)},
        )
    return audio.astype(np.float32, copy=False)


def _is_punctuation(word: str) -> bool:
    stripped = word.strip()
    return bool(stripped) and all(ch in string.punctuation for ch in stripped)


def _normalized(words: list[str]) -> list[str]:
    return [w.strip().strip(string.punctuation).lower() for w in words if not _is_punctuation(w)]


def _drop_repeated_head(hypothesis: _Hypothesis, tail: list[str]) -> _Hypothesis:
    """After a trim the cut may leave part of the last final word: don't say it twice."""
    if not tail:
        return hypothesis
    head = _normalized(hypothesis.words[: len(tail)])
    for n in range(min(len(tail), len(head)), 0, -1):
        if head[:n] == tail[-n:]:
            return _Hypothesis(hypothesis.words[n:], hypothesis.tokens[n:])
    return hypothesis


def _looks_looped(tokenizer: Tokenizer, tokens: list[int], tuning: StreamTuning) -> bool:
    """Whether a decode repeats itself (the classic Whisper hallucination)."""
    text = tokenizer.decode(tokens)
    raw = text.encode("utf-8")
    if len(raw) > 40 and len(raw) / len(zlib.compress(raw)) > tuning.compression_ratio_threshold:
        return True
    return _repeats(_normalized(text.split()))


def _repeats(words: list[str]) -> bool:
    """True if an n-gram (n <= 4) repeats back to back: 4 times for n=1, 3 times otherwise."""
    for n in range(1, 5):
        needed = 4 if n == 1 else 3
        for start in range(len(words) - n * needed + 1):
            gram = words[start : start + n]
            if all(words[start + k * n : start + (k + 1) * n] == gram for k in range(1, needed)):
                return True
    return False


def _repeat_start(words: list[str]) -> int:
    """Index of the word where the text starts copying itself, else ``len(words)``.

    A phrase immediately followed by a copy of itself is how a short buffer with silent
    padding makes Whisper say things twice ("fellow Americans. And so my fellow Americans.",
    "Ask not! Ask not!"). Real speech rarely does it, so a copy counts from 3 words (it may be
    cut short by the end of the decode), or from 2 when it repeats a whole sentence; a word
    repeated ("very very") is left alone.
    """
    spoken = [(i, w) for i, w in enumerate(_normalized_each(words)) if w]
    norm = [w for _, w in spoken]
    ends = _sentence_ends(words, [i for i, _ in spoken])
    for second in range(2, len(norm)):
        for first in range(second - 2, -1, -1):
            block = second - first
            length = min(block, len(norm) - second)
            if norm[second : second + length] != norm[first : first + length]:
                continue
            if length >= 3 or (length == block == 2 and ends[second - 1]):
                return spoken[second][0]
    return len(words)


def _sentence_ends(words: list[str], spoken: list[int]) -> list[bool]:
    """For each spoken word, whether a sentence ends with it (its own or a following mark)."""
    bounds = [*spoken[1:], len(words)]
    return [
        any(mark in "".join(words[i:end]) for mark in ".!?")
        for i, end in zip(spoken, bounds, strict=True)
    ]


def _normalized_each(words: list[str]) -> list[str]:
    """One entry per word: lower case without punctuation ('' for punctuation-only words)."""
    return ["" if _is_punctuation(w) else w.strip().strip(string.punctuation).lower() for w in words]
