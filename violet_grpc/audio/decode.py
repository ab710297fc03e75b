"""Turn whatever a user sends into float32 mono 16 kHz samples, the one format engines take.

Every speech model in Violet (faster-whisper, the VAD, the validators' scorers) wants mono
float32 at 16 kHz, while users send WAV, FLAC, MP3, Ogg, WebM, M4A or a whole video. This
module hides that difference behind PyAV (FFmpeg) and its resampler, decoding packet by
packet so memory follows the output, never the size of the container.

Two kinds of input:

* **files** (``decode_file``, ``iter_decode``, ``probe``): any container FFmpeg can read,
  given as bytes or a path;
* **streams** pushed in arbitrary slices, as a gRPC stream delivers them: headerless
  samples (``Linear16Resampler``, ``MulawResampler``) or compressed containers
  (``ContainerStreamDecoder`` for FLAC, Ogg/Opus, WebM/Opus); ``stream_resampler`` picks.

Bad input always raises :class:`~violet_grpc.errors.InvalidArgument` (or
:class:`~violet_grpc.errors.ResourceExhausted` for a limit), never returns ``None``.
"""
from __future__ import annotations

import contextlib
import enum
import io
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import av
import av.container
import numpy as np

from violet_grpc.errors import InvalidArgument, NotFound, ResourceExhausted, VioletError

__all__ = [
    "TARGET_SAMPLE_RATE",
    "SUPPORTED_STREAM_RATES",
    "AudioEncoding",
    "ContainerStreamDecoder",
    "DecodedAudio",
    "MediaInfo",
    "Linear16Resampler",
    "MulawResampler",
    "StreamDecoder",
    "decode_file",
    "iter_decode",
    "probe",
    "stream_resampler",
]

#: The sample rate every engine consumes.
TARGET_SAMPLE_RATE = 16_000

#: Raw-stream rates clients may declare; FFmpeg could do any, but an odd rate is almost
#: always a client bug (bytes-per-second passed as the rate, say), so it is refused early.
SUPPORTED_STREAM_RATES = frozenset({8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000,
                                    44_100, 48_000, 88_200, 96_000})

#: Demuxers FFmpeg may pick that never hold audio worth decoding (pictures, text art,
#: subtitles): refusing them says "not audio" instead of a puzzling "no audio track".
_NON_MEDIA_FORMATS = frozenset({"image2", "tty", "bin", "srt", "ass", "webvtt", "subviewer"})

MediaSource = bytes | bytearray | memoryview | Path | str

#: FFmpeg's default layout for each channel count a raw stream may declare; the order of
#: interleaved channels follows it, and the downmix to mono needs to know it.
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

#: The largest slice handed to ``AudioFrame.from_ndarray`` in one go; keeps the per-push
#: working set small even when a client sends a huge message.
_PCM_FRAME_SAMPLES = 1 << 15


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded file, ready for an engine.

    Attributes:
        samples: float32 mono samples at ``sample_rate``, nominally in [-1, 1] (resampling
            a full-scale signal can overshoot slightly; nothing is clipped).
        sample_rate: Always :data:`TARGET_SAMPLE_RATE`.
        duration: Seconds of audio in ``samples``.
        source_format: FFmpeg's name for the container (``"wav"``, ``"ogg"``,
            ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"matroska,webm"`` …).
        source_sample_rate: Sample rate of the original audio track.
        source_channels: Channel count of the original audio track.
        source_codec: FFmpeg's name for the original audio codec (``"opus"``, ``"aac"`` …).
    """

    samples: np.ndarray
    sample_rate: int
    duration: float
    source_format: str
    source_sample_rate: int
    source_channels: int
    source_codec: str = ""


@dataclass(frozen=True)
class MediaInfo:
    """What a container holds, read from its headers without decoding.

    Attributes:
        container_format: FFmpeg's name for the container.
        has_audio: Whether there is at least one audio stream.
        has_video: Whether there is at least one real video stream (cover art excluded).
        duration: Seconds, when the container says; ``None`` when it cannot tell.
        audio_codec: Codec of the first audio stream, if any.
        sample_rate: Sample rate of the first audio stream, if any.
        channels: Channel count of the first audio stream, if any.
        video_codec: Codec of the first video stream, if any.
    """

    container_format: str
    has_audio: bool
    has_video: bool
    duration: float | None
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    video_codec: str | None = None


# --------------------------------------------------------------------------- files


def probe(data: MediaSource) -> MediaInfo:
    """Read a container's headers so callers can say "this is not a video" early.

    Args:
        data: The file's bytes, or a path to it.

    Returns:
        The container format, which kinds of streams it has and its duration.

    Raises:
        InvalidArgument: ``EMPTY_AUDIO`` for no bytes, ``UNSUPPORTED_AUDIO`` when FFmpeg
            cannot read it as media at all.
        NotFound: the path does not exist.
    """
    with _opened(data) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        videos = _real_video_streams(container)
        return MediaInfo(
            container_format=container.format.name,
            has_audio=audio is not None,
            has_video=bool(videos),
            duration=_container_duration(container),
            audio_codec=audio.codec_context.name if audio else None,
            sample_rate=audio.codec_context.sample_rate if audio else None,
            channels=audio.codec_context.channels if audio else None,
            video_codec=videos[0].codec_context.name if videos else None,
        )


def decode_file(data: MediaSource, *, max_seconds: float | None = None) -> DecodedAudio:
    """Decode the first audio track of any supported file to mono 16 kHz float32.

    Works for WAV, FLAC, MP3, Ogg (Opus/Vorbis), WebM, M4A and the audio of MP4, MKV,
    WebM and MOV videos.

    Args:
        data: The file's bytes, or a path to it.
        max_seconds: Refuse audio longer than this (checked against the header before
            decoding and against the decoded samples while decoding).

    Returns:
        The samples with what was learnt about the source.

    Raises:
        InvalidArgument: ``EMPTY_AUDIO`` (no bytes, or no samples decoded),
            ``UNSUPPORTED_AUDIO`` (not media, or corrupt), ``NO_AUDIO_TRACK`` (a video
            without sound).
        ResourceExhausted: ``AUDIO_TOO_LONG`` when longer than ``max_seconds``.
        NotFound: the path does not exist.
    """
    with _opened(data) as container:
        stream = _audio_stream(container)
        header_seconds = _container_duration(container)
        _check_length(header_seconds, max_seconds, tolerance=1.0)
        buffer = _SampleBuffer(_capacity_hint(header_seconds, max_seconds))
        for block in _decode_blocks(container, stream):
            buffer.append(block)
            _check_length(len(buffer) / TARGET_SAMPLE_RATE, max_seconds)
        samples = buffer.finish()
        if samples.size == 0:
            raise _empty_audio("the file decodes to no audio samples")
        return DecodedAudio(
            samples=samples,
            sample_rate=TARGET_SAMPLE_RATE,
            duration=samples.size / TARGET_SAMPLE_RATE,
            source_format=container.format.name,
            source_sample_rate=stream.codec_context.sample_rate,
            source_channels=stream.codec_context.channels,
            source_codec=stream.codec_context.name,
        )


def iter_decode(
    source: MediaSource,
    *,
    chunk_seconds: float = 30.0,
    max_seconds: float | None = None,
) -> Iterator[np.ndarray]:
    """Decode a long file in fixed-size pieces, so memory stays bounded by ``chunk_seconds``.

    The file is opened and checked before this returns, so "not audio" and "no audio
    track" surface at the call, not at the first ``next()``.

    Args:
        source: The file's bytes, or a path to it.
        chunk_seconds: Length of every yielded piece except the last, which may be shorter.
        max_seconds: Stop with ``ResourceExhausted`` once more audio than this is decoded.

    Returns:
        An iterator of float32 mono 16 kHz arrays.

    Raises:
        InvalidArgument: as :func:`decode_file`; ``EMPTY_AUDIO`` is raised by the iterator
            when the file turns out to hold no samples. Also for ``chunk_seconds <= 0``.
        ResourceExhausted: ``AUDIO_TOO_LONG``, from the iterator.
    """
    if not chunk_seconds > 0:
        raise InvalidArgument(
            f"chunk_seconds must be positive, got {chunk_seconds}",
            reason="INVALID_CHUNK_SIZE",
            metadata={"chunk_seconds": str(chunk_seconds)},
        )
    chunk_samples = max(1, round(chunk_seconds * TARGET_SAMPLE_RATE))
    resources = contextlib.ExitStack()
    try:
        container = resources.enter_context(_opened(source))
        stream = _audio_stream(container)
        _check_length(_container_duration(container), max_seconds, tolerance=1.0)
    except BaseException:
        resources.close()
        raise
    return _iter_chunks(resources, container, stream, chunk_samples, max_seconds)


def _iter_chunks(
    resources: contextlib.ExitStack,
    container: av.container.InputContainer,
    stream: av.AudioStream,
    chunk_samples: int,
    max_seconds: float | None,
) -> Iterator[np.ndarray]:
    """Regroup decoded blocks into ``chunk_samples``-long arrays; closes the file at the end."""
    with resources:
        pending = _SampleBuffer(chunk_samples)
        total = 0
        for block in _decode_blocks(container, stream):
            total += block.size
            _check_length(total / TARGET_SAMPLE_RATE, max_seconds)
            while block.size:
                room = chunk_samples - len(pending)
                pending.append(block[:room])
                block = block[room:]
                if len(pending) == chunk_samples:
                    yield pending.finish()
                    pending = _SampleBuffer(chunk_samples)
        if len(pending):
            yield pending.finish()
        elif total == 0:
            raise _empty_audio("the file decodes to no audio samples")


def _decode_blocks(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[np.ndarray]:
    """Demux and decode one stream packet by packet, yielding 16 kHz mono blocks."""
    resampler = _ChangeTolerantResampler()
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                yield from resampler.push(frame)
        yield from resampler.flush()
    except av.error.FFmpegError as exc:
        raise InvalidArgument(
            f"the audio is corrupt and could not be decoded: {exc.strerror or exc}",
            reason="UNSUPPORTED_AUDIO",
            metadata={"container_format": container.format.name},
        ) from exc


class _ChangeTolerantResampler:
    """FFmpeg's resampler, rebuilt when a stream changes rate or layout mid-file.

    PyAV's ``AudioResampler`` refuses frames that differ from the first one, yet chained
    MP3s and some AAC streams do change parameters part-way; losing the rest of the file
    over that would be a poor answer to the user.
    """

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._signature: tuple[str, str, int] | None = None

    def push(self, frame: av.AudioFrame) -> Iterator[np.ndarray]:
        signature = (frame.format.name, frame.layout.name, frame.sample_rate)
        resampler = self._resampler
        if resampler is None or signature != self._signature:
            yield from self.flush()
            resampler = self._resampler = _mono_16k_resampler()
            self._signature = signature
        # Timestamps are irrelevant here and a jump in them makes the filter graph warn.
        frame.pts = None
        for out in resampler.resample(frame):
            yield _frame_to_mono(out)

    def flush(self) -> Iterator[np.ndarray]:
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                yield _frame_to_mono(out)
        self._resampler = None
        self._signature = None


def _mono_16k_resampler() -> av.AudioResampler:
    return av.AudioResampler(format="flt", layout="mono", rate=TARGET_SAMPLE_RATE)


def _frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """A packed ``flt`` mono frame as a 1-D float32 array (copied: the frame is reused)."""
    return np.array(frame.to_ndarray().reshape(-1), dtype=np.float32)


class _SampleBuffer:
    """A float32 array that grows by doubling, so decoding needs no list of frames."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(max(capacity, 1024), dtype=np.float32)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, block: np.ndarray) -> None:
        end = self._size + block.size
        if end > self._data.size:
            grown = np.empty(max(end, self._data.size * 2), dtype=np.float32)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : end] = block
        self._size = end

    def finish(self) -> np.ndarray:
        """The samples, trimmed; copies only when the estimate was well over the truth."""
        if self._size * 2 < self._data.size:
            return self._data[: self._size].copy()
        return self._data[: self._size]


def _capacity_hint(header_seconds: float | None, max_seconds: float | None) -> int:
    seconds = header_seconds if header_seconds is not None else 30.0
    if max_seconds is not None:
        seconds = min(seconds, max_seconds)
    return int((seconds + 0.5) * TARGET_SAMPLE_RATE)


def _check_length(
    seconds: float | None, max_seconds: float | None, tolerance: float = 0.01
) -> None:
    """Refuse audio past the limit; header durations get a wider margin as they are rounded."""
    if seconds is None or max_seconds is None or seconds <= max_seconds + tolerance:
        return
    raise ResourceExhausted(
        f"audio is longer than the {max_seconds:g} s limit",
        reason="AUDIO_TOO_LONG",
        metadata={"max_seconds": f"{max_seconds:g}", "duration_seconds": f"{seconds:.2f}"},
    )


# ------------------------------------------------------------------ opening containers


@contextlib.contextmanager
def _opened(data: MediaSource) -> Iterator[av.container.InputContainer]:
    """Open bytes or a path with FFmpeg; closes the container and the file together."""
    with _as_file(data) as handle, _open_container(handle) as container:
        yield container


def _open_container(handle: BinaryIO) -> av.container.InputContainer:
    """FFmpeg's container for an open file, its failures turned into Violet errors."""
    try:
        container = av.open(handle, mode="r", io_open=_refuse_nested_open)
    except av.error.FFmpegError as exc:
        raise _not_media(exc) from exc
    except PermissionError as exc:
        # Our own io_open refused: a playlist or concat list pointing at other files.
        raise InvalidArgument(
            "playlists and files that reference other files are not accepted",
            reason="UNSUPPORTED_AUDIO",
        ) from exc
    name = container.format.name
    if _is_non_media(name):
        container.close()
        raise InvalidArgument(
            f"the file is not audio or video (FFmpeg reads it as {name!r})",
            reason="UNSUPPORTED_AUDIO",
            metadata={"container_format": name},
        )
    return container


def _is_non_media(format_name: str) -> bool:
    names = format_name.split(",")
    return any(n.endswith("_pipe") or n in _NON_MEDIA_FORMATS for n in names)


def _as_file(data: MediaSource) -> BinaryIO:
    """A readable file object; Python opens paths so FFmpeg's own file access stays unused."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise NotFound(f"no such audio file: {path}", reason="FILE_NOT_FOUND",
                           metadata={"path": str(path)})
        if path.stat().st_size == 0:
            raise _empty_audio("the file is empty")
        return path.open("rb")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgument(
            f"expected bytes or a path, got {type(data).__name__}", reason="UNSUPPORTED_AUDIO"
        )
    if len(data) == 0:
        raise _empty_audio("the file is empty")
    return io.BytesIO(data)


def _refuse_nested_open(url: str, flags: int, options: dict[str, str]) -> BinaryIO:
    """Stop demuxers (HLS, concat, …) from opening files or URLs named inside the upload.

    Without this, a crafted playlist makes FFmpeg read server-local files or fetch URLs.
    """
    raise PermissionError(f"refusing to open {url!r} referenced from inside a media file")


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    if container.streams.audio:
        return container.streams.audio[0]
    if _real_video_streams(container):
        raise InvalidArgument(
            "the video has no audio track",
            reason="NO_AUDIO_TRACK",
            metadata={"container_format": container.format.name},
        )
    raise InvalidArgument(
        "the file holds no audio stream",
        reason="UNSUPPORTED_AUDIO",
        metadata={"container_format": container.format.name},
    )


def _real_video_streams(container: av.container.InputContainer) -> list[av.VideoStream]:
    """Video streams other than embedded cover art (an MP3's album picture is no video)."""
    return [
        s for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)
    ]


def _container_duration(container: av.container.InputContainer) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    for stream in container.streams.audio:
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
    return None


def _not_media(exc: av.error.FFmpegError) -> InvalidArgument:
    return InvalidArgument(
        "the file is not audio or video that can be decoded "
        f"(FFmpeg: {exc.strerror or type(exc).__name__})",
        reason="UNSUPPORTED_AUDIO",
    )


def _empty_audio(message: str) -> InvalidArgument:
    return InvalidArgument(message, reason="EMPTY_AUDIO")


# ---------------------------------------------------------------------- raw streams


class AudioEncoding(enum.Enum):
    """Encodings a client may stream: headerless samples or a compressed container."""

    #: Signed 16-bit little-endian PCM.
    LINEAR16 = "linear16"
    #: G.711 μ-law, 8 bits a sample (telephony).
    MULAW = "mulaw"
    #: A FLAC stream (lossless, about half the bytes of LINEAR16).
    FLAC = "flac"
    #: Opus in Ogg pages.
    OGG_OPUS = "ogg_opus"
    #: Opus in WebM, what browsers' MediaRecorder produces.
    WEBM_OPUS = "webm_opus"


class StreamDecoder(Protocol):
    """Turns a client's audio stream, pushed in arbitrary slices, into 16 kHz mono float32."""

    def push(self, raw: bytes) -> np.ndarray:
        """Decode the next slice; returns the samples ready so far (possibly none)."""
        ...

    def flush(self) -> np.ndarray:
        """End the stream; returns the samples still held back."""
        ...

    def close(self) -> None:
        """Release resources without finishing (the client went away)."""
        ...


class _RawPcmResampler:
    """Shared machinery: split pushes into whole frames, convert, resample to 16 kHz mono.

    Subclasses say how many bytes a sample takes and how to turn bytes into int16.
    """

    _bytes_per_sample = 2

    def __init__(self, sample_rate: int, channels: int = 1) -> None:
        _check_stream_format(sample_rate, channels)
        self.sample_rate = sample_rate
        self.channels = channels
        self._frame_bytes = self._bytes_per_sample * channels
        self._carry = b""
        self._resampler = _mono_16k_resampler()
        self._passthrough = sample_rate == TARGET_SAMPLE_RATE and channels == 1
        self._closed = False

    def push(self, raw: bytes) -> np.ndarray:
        """Convert the next slice of the stream.

        Args:
            raw: Any number of bytes; a partial sample at the end is kept for the next push.

        Returns:
            The float32 mono 16 kHz samples ready so far (possibly empty: the resampler
            holds a few samples back until it has seen what follows them).

        Raises:
            InvalidArgument: ``STREAM_CLOSED`` after :meth:`flush`.
        """
        if self._closed:
            raise InvalidArgument("audio pushed after the stream was flushed",
                                  reason="STREAM_CLOSED")
        data = self._carry + bytes(raw)
        whole = len(data) - len(data) % self._frame_bytes
        self._carry = data[whole:]
        if whole == 0:
            return np.zeros(0, dtype=np.float32)
        pcm = self._to_int16(data[:whole]).reshape(-1, self.channels)
        if self._passthrough:
            return pcm.reshape(-1).astype(np.float32) / 32768.0
        return self._resample(pcm)

    def flush(self) -> np.ndarray:
        """End the stream and return the samples the resampler was holding back.

        A trailing partial sample (half of an int16) is dropped: it cannot be decoded.
        """
        self._closed = True
        self._carry = b""
        if self._passthrough:
            return np.zeros(0, dtype=np.float32)
        return _concat(_frame_to_mono(f) for f in self._resampler.resample(None))

    def close(self) -> None:
        """Nothing to release: present so every :class:`StreamDecoder` closes alike."""
        self._closed = True

    def _resample(self, pcm: np.ndarray) -> np.ndarray:
        layout = _LAYOUTS[self.channels]
        blocks: list[np.ndarray] = []
        for start in range(0, pcm.shape[0], _PCM_FRAME_SAMPLES):
            piece = np.ascontiguousarray(pcm[start : start + _PCM_FRAME_SAMPLES])
            frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout=layout)
            frame.sample_rate = self.sample_rate
            blocks.extend(_frame_to_mono(f) for f in self._resampler.resample(frame))
        return _concat(blocks)

    def _to_int16(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype="<i2")


class Linear16Resampler(_RawPcmResampler):
    """Streaming signed 16-bit little-endian PCM at any common rate → float32 16 kHz mono.

    Pushes may split a sample (or a stereo frame) across messages; the remainder is kept.

    Args:
        sample_rate: Rate the client declared (one of :data:`SUPPORTED_STREAM_RATES`).
        channels: Interleaved channels the client sends (downmixed to mono).

    Raises:
        InvalidArgument: ``UNSUPPORTED_AUDIO`` for an unsupported rate or channel count.
    """

    _bytes_per_sample = 2


class MulawResampler(_RawPcmResampler):
    """Streaming G.711 μ-law (8 bits a sample, telephony) → float32 16 kHz mono.

    Args:
        sample_rate: Rate the client declared (usually 8000).
        channels: Interleaved channels the client sends.

    Raises:
        InvalidArgument: ``UNSUPPORTED_AUDIO`` for an unsupported rate or channel count.
    """

    _bytes_per_sample = 1

    def _to_int16(self, data: bytes) -> np.ndarray:
        return _MULAW_TABLE[np.frombuffer(data, dtype=np.uint8)]


class ContainerStreamDecoder:
    """A compressed stream (FLAC, Ogg/Opus, WebM/Opus) pushed in slices → 16 kHz mono.

    FFmpeg's demuxers pull their input, while a gRPC stream pushes it. A worker thread
    runs the demuxer on a pipe; each :meth:`push` hands it the bytes and waits until it
    has decoded all it can and asks for more, so a push returns every sample its bytes
    complete — deterministic, and never more than one message of input buffered. The
    first samples come once FFmpeg has read the stream headers (a few KB). Opus output
    follows input within a packet; FFmpeg's FLAC parser reads about a second ahead, so
    FLAC's last second arrives from :meth:`flush`.

    Args:
        encoding: One of the container encodings of :class:`AudioEncoding`.

    Raises:
        InvalidArgument: ``UNSUPPORTED_AUDIO`` for a non-container encoding; from
            :meth:`push` / :meth:`flush` when the stream is not what was declared or is
            corrupt.
    """

    _DEMUXERS = {AudioEncoding.FLAC: "flac", AudioEncoding.OGG_OPUS: "ogg",
                 AudioEncoding.WEBM_OPUS: "matroska"}

    def __init__(self, encoding: AudioEncoding) -> None:
        if encoding not in self._DEMUXERS:
            raise InvalidArgument(f"{encoding.name} is not a container encoding",
                                  reason="UNSUPPORTED_AUDIO",
                                  metadata={"encoding": encoding.name})
        self.encoding = encoding
        self._fed = 0
        self._ended = False
        self._pipe = _Pipe()
        self._worker = _DecodeWorker(self._pipe, self._DEMUXERS[encoding])
        self._thread = threading.Thread(target=self._worker.run, daemon=True,
                                        name=f"decode-{encoding.value}")
        self._thread.start()
        # A client that vanishes never flushes: end the worker when this object goes.
        weakref.finalize(self, self._pipe.close_input)

    def push(self, raw: bytes) -> np.ndarray:
        """Decode the next slice of the stream.

        Raises:
            InvalidArgument: ``UNSUPPORTED_AUDIO`` (corrupt or mislabeled stream),
                ``STREAM_CLOSED`` after :meth:`flush` or :meth:`close`.
        """
        if self._ended:
            raise InvalidArgument("audio pushed after the stream was flushed",
                                  reason="STREAM_CLOSED")
        self._worker.raise_error()
        data = bytes(raw)
        if not data:
            return np.zeros(0, dtype=np.float32)
        self._fed += len(data)
        self._pipe.feed(data)
        self._pipe.wait_until_starved()
        return self._worker.take()

    def flush(self) -> np.ndarray:
        """End the stream and return the last samples.

        Raises:
            InvalidArgument: ``UNSUPPORTED_AUDIO`` when the stream was not decodable.
        """
        self._ended = True
        self._pipe.close_input()
        self._thread.join()
        if self._fed == 0:  # nothing was sent: no audio, like a raw stream, not an error
            return np.zeros(0, dtype=np.float32)
        rest = self._worker.take()
        if self._worker.produced == 0:
            raise InvalidArgument(
                f"{self._fed} bytes held no decodable {self.encoding.name} audio",
                reason="UNSUPPORTED_AUDIO",
                metadata={"encoding": self.encoding.name, "bytes": str(self._fed)},
            )
        return rest

    def close(self) -> None:
        """Stop the worker without waiting for the remaining samples."""
        self._ended = True
        self._pipe.close_input()


class _Pipe:
    """Bytes handed from pushes to FFmpeg's reads, with the "starved" handshake."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._data = bytearray()
        self.input_closed = False
        self._starved = False
        self._finished = False

    def feed(self, data: bytes) -> None:
        with self._cond:
            self._data += data
            self._starved = False
            self._cond.notify_all()

    def close_input(self) -> None:
        with self._cond:
            self.input_closed = True
            self._cond.notify_all()

    def finish(self) -> None:
        """Called by the worker when it stops, so no push waits on it forever."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def wait_until_starved(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: (self._starved and not self._data) or self._finished)

    def read(self, size: int) -> bytes:
        """FFmpeg's read: blocks until bytes arrive; ``b""`` (end of file) once closed."""
        with self._cond:
            while not self._data and not self.input_closed:
                self._starved = True
                self._cond.notify_all()
                self._cond.wait()
            chunk = bytes(self._data[:size])
            del self._data[:size]
            return chunk


class _DecodeWorker:
    """The thread's side: demux and decode from the pipe, collect samples, keep the error."""

    def __init__(self, pipe: _Pipe, demuxer: str) -> None:
        self._pipe = pipe
        self._demuxer = demuxer
        self._lock = threading.Lock()
        self._blocks: list[np.ndarray] = []
        self._error: VioletError | None = None
        #: Samples decoded so far, to tell a silent-but-valid stream from a wrong one.
        self.produced = 0

    def run(self) -> None:
        try:
            container = av.open(self._pipe, mode="r", format=self._demuxer, buffer_size=4096,
                                io_open=_refuse_nested_open)
            with container:
                for block in _decode_blocks(container, _audio_stream(container)):
                    with self._lock:
                        self._blocks.append(block)
                        self.produced += block.size
        except av.error.FFmpegError as exc:
            self._error = _not_media(exc)
        except VioletError as exc:
            self._error = exc
        except Exception as exc:  # PyAV raises ValueError and friends on odd streams
            self._error = InvalidArgument(f"the audio stream could not be decoded: {exc}",
                                          reason="UNSUPPORTED_AUDIO")
        finally:
            self._pipe.close_input()
            self._pipe.finish()

    def raise_error(self) -> None:
        """Re-raise the error that stopped decoding, if one did."""
        if self._error is not None:
            raise self._error

    def take(self) -> np.ndarray:
        """The samples decoded since the last call, or the error that stopped decoding."""
        self.raise_error()
        with self._lock:
            blocks, self._blocks = self._blocks, []
        return _concat(blocks)


def stream_resampler(
    encoding: AudioEncoding, sample_rate: int = TARGET_SAMPLE_RATE, channels: int = 1
) -> StreamDecoder:
    """The decoder for a client's declared encoding, so servers need no ``if`` ladder.

    Args:
        encoding: What the client says it sends.
        sample_rate: Rate of headerless encodings; containers carry their own.
        channels: Channels of headerless encodings; containers carry their own.

    Raises:
        InvalidArgument: ``UNSUPPORTED_AUDIO`` for an unknown encoding, rate or layout.
    """
    if encoding is AudioEncoding.LINEAR16:
        return Linear16Resampler(sample_rate, channels)
    if encoding is AudioEncoding.MULAW:
        return MulawResampler(sample_rate, channels)
    return ContainerStreamDecoder(encoding)


def _mulaw_table() -> np.ndarray:
    """ITU-T G.711 μ-law expansion of all 256 codes to int16."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_MULAW_TABLE = _mulaw_table()


def _check_stream_format(sample_rate: int, channels: int) -> None:
    if sample_rate not in SUPPORTED_STREAM_RATES:
        raise InvalidArgument(
            f"unsupported sample rate {sample_rate} Hz; use one of "
            + ", ".join(str(r) for r in sorted(SUPPORTED_STREAM_RATES)),
            reason="UNSUPPORTED_AUDIO",
            metadata={"sample_rate": str(sample_rate)},
        )
    if channels not in _LAYOUTS:
        raise InvalidArgument(
            f"unsupported channel count {channels}; use 1 to 8",
            reason="UNSUPPORTED_AUDIO",
            metadata={"channels": str(channels)},
        )


def _concat(blocks: Iterator[np.ndarray] | list[np.ndarray]) -> np.ndarray:
    parts = list(blocks)
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)

