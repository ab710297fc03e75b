"""Encode synthesized or processed audio into the formats users download or stream.

TTS engines produce float32 samples at their own rate (22.05 kHz for the default Piper
voice); users want a file their player understands. PyAV 18 has libopus and libmp3lame
but no libvorbis, so the compressed choices are Ogg/Opus and MP3 (see DESIGN §5).

:func:`encode` makes a whole file; :class:`StreamingEncoder` makes the same bytes
incrementally, so the first sentence of a long text can be sent while the rest is still
being synthesized.
"""
from __future__ import annotations

import enum
import io
import struct
from fractions import Fraction
from types import TracebackType
from typing import cast

import av
import av.container
import numpy as np

from violet_grpc.errors import InvalidArgument

__all__ = [
    "AudioFormat",
    "StreamingEncoder",
    "content_type",
    "encode",
    "file_extension",
]


class AudioFormat(enum.Enum):
    """Output formats Violet can produce."""

    #: RIFF WAVE, 16-bit PCM: plays everywhere, no quality loss, large.
    WAV = "wav"
    #: Opus in Ogg: the best speech quality per byte; always decoded at 48 kHz.
    OGG_OPUS = "ogg_opus"
    #: MPEG-1/2 Layer III through LAME: for players that know nothing newer.
    MP3 = "mp3"
    #: Headerless signed 16-bit little-endian samples (the caller must know the rate).
    PCM_S16LE = "pcm_s16le"


_CONTENT_TYPES = {
    AudioFormat.WAV: "audio/wav",
    AudioFormat.OGG_OPUS: "audio/ogg",
    AudioFormat.MP3: "audio/mpeg",
}
_EXTENSIONS = {
    AudioFormat.WAV: ".wav",
    AudioFormat.OGG_OPUS: ".ogg",
    AudioFormat.MP3: ".mp3",
    AudioFormat.PCM_S16LE: ".pcm",
}

#: Opus only runs at these rates; 48 kHz is what every Ogg/Opus decoder outputs anyway.
_OPUS_RATE = 48_000
_MP3_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
#: Mono speech bit rates: Opus is transparent for speech at 32 kb/s; MP3 needs about twice.
_DEFAULT_BIT_RATES = {AudioFormat.OGG_OPUS: 32_000, AudioFormat.MP3: 64_000}
#: Ogg pages are cut at least this often (µs). FFmpeg's default of 1 s would hold the end
#: of every streamed sentence back a second; much shorter pages waste bytes on headers.
_OGG_PAGE_MICROSECONDS = 100_000
#: Data size written in a streamed WAV header, whose real length is unknown. 0xFFFFFFFF
#: is what FFmpeg, sox and browsers read as "until the end of the stream".
_WAV_STREAM_SIZE = 0xFFFF_FFFF
_MIN_RATE, _MAX_RATE = 1_000, 384_000


def content_type(fmt: AudioFormat, sample_rate: int | None = None) -> str:
    """The MIME type to send with audio in ``fmt``.

    Args:
        fmt: The format.
        sample_rate: Needed for raw PCM only, whose type carries the rate
            (``audio/L16;rate=22050``). The samples are little-endian, as Google's and
            most speech APIs' LINEAR16 are, although RFC 2586 describes L16 as big-endian.

    Raises:
        InvalidArgument: raw PCM without a sample rate.
    """
    if fmt is AudioFormat.PCM_S16LE:
        if sample_rate is None:
            raise InvalidArgument("raw PCM needs its sample rate to name a content type",
                                  reason="INVALID_AUDIO")
        return f"audio/L16;rate={sample_rate}"
    return _CONTENT_TYPES[fmt]


def file_extension(fmt: AudioFormat) -> str:
    """The file name extension for ``fmt``, with its dot (``".ogg"``)."""
    return _EXTENSIONS[fmt]


def encode(
    samples: np.ndarray,
    sample_rate: int,
    fmt: AudioFormat,
    *,
    bit_rate: int | None = None,
) -> bytes:
    """Encode a whole mono signal into one file.

    Args:
        samples: 1-D mono samples, float (nominally in [-1, 1]; clipped) or int16.
        sample_rate: Rate of ``samples`` in Hz; compressed formats resample as they need.
        fmt: Output format.
        bit_rate: Bits a second for Opus/MP3; a speech-friendly default when ``None``.

    Returns:
        The complete file.

    Raises:
        InvalidArgument: ``INVALID_AUDIO`` for a non-1-D array, an unsupported dtype or an
            impossible sample rate.
    """
    pcm = _to_pcm16(samples)
    _check_rate(sample_rate)
    if fmt is AudioFormat.PCM_S16LE:
        return pcm.tobytes()
    if fmt is AudioFormat.WAV:
        return _wav_header(sample_rate, data_bytes=pcm.size * 2) + pcm.tobytes()
    writer = _AvStreamWriter(fmt, sample_rate, bit_rate or _DEFAULT_BIT_RATES[fmt],
                             sink=_FileSink())
    writer.push(pcm)
    return writer.close()


class StreamingEncoder:
    """Encode audio that arrives piece by piece, returning bytes as soon as they exist.

    Concatenating everything :meth:`push` and :meth:`close` return gives a valid file (a
    WAV whose header says "length unknown", since it is written before the length is).

    Args:
        fmt: Output format.
        sample_rate: Rate of the samples that will be pushed.
        bit_rate: Bits a second for Opus/MP3; a speech-friendly default when ``None``.

    Raises:
        InvalidArgument: ``INVALID_AUDIO`` for an impossible sample rate.
    """

    def __init__(self, fmt: AudioFormat, sample_rate: int, *, bit_rate: int | None = None) -> None:
        _check_rate(sample_rate)
        self.fmt = fmt
        self.sample_rate = sample_rate
        self._closed = False
        self._header_sent = False
        self._av: _AvStreamWriter | None = None
        if fmt in (AudioFormat.OGG_OPUS, AudioFormat.MP3):
            self._av = _AvStreamWriter(fmt, sample_rate, bit_rate or _DEFAULT_BIT_RATES[fmt],
                                       sink=_Sink())

    @property
    def content_type(self) -> str:
        """The MIME type of the bytes this encoder produces."""
        return content_type(self.fmt, self.sample_rate)

    def push(self, samples: np.ndarray) -> bytes:
        """Encode the next samples.

        Returns:
            Whatever encoded bytes are ready (may be empty: codecs work in frames and the
            container in pages, so some audio waits for the next push or :meth:`close`).

        Raises:
            InvalidArgument: ``INVALID_AUDIO`` for a bad array, ``STREAM_CLOSED`` after close.
        """
        if self._closed:
            raise InvalidArgument("audio pushed after the encoder was closed",
                                  reason="STREAM_CLOSED")
        pcm = _to_pcm16(samples)
        if self._av is not None:
            return self._av.push(pcm)
        return self._header() + pcm.tobytes()

    def close(self) -> bytes:
        """Flush the codec and container; returns the last bytes. Closing twice is harmless."""
        if self._closed:
            return b""
        self._closed = True
        if self._av is not None:
            return self._av.close()
        return self._header()

    def __enter__(self) -> StreamingEncoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._av is not None and not self._closed:
            self._closed = True
            self._av.abort()

    def _header(self) -> bytes:
        """The streamed WAV header, once, before the first samples; nothing for raw PCM."""
        if self.fmt is not AudioFormat.WAV or self._header_sent:
            return b""
        self._header_sent = True
        return _wav_header(self.sample_rate, data_bytes=None)


class _Sink:
    """A write-only file object that PyAV writes into and we drain after every push.

    It has no ``seek``, so muxers write strictly forward (MP3 then skips rewriting its
    Xing header, which players do without).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def drain(self) -> bytes:
        """Everything written since the last drain."""
        out = bytes(self._buffer)
        self._buffer.clear()
        return out

    def finish(self) -> bytes:
        """What is left once the container is closed."""
        return self.drain()


class _FileSink(io.BytesIO):
    """A seekable sink for whole-file encoding: the MP3 muxer can then go back and write
    its Xing/LAME header, which tells decoders to trim the encoder's delay and padding."""

    def drain(self) -> bytes:
        """Nothing until the end: bytes written so far may still be rewritten."""
        return b""

    def finish(self) -> bytes:
        """The whole file."""
        return self.getvalue()


class _AvStreamWriter:
    """An Opus-in-Ogg or MP3 encoder and muxer writing into a sink."""

    def __init__(
        self, fmt: AudioFormat, sample_rate: int, bit_rate: int, *, sink: _Sink | _FileSink
    ) -> None:
        self._sink = sink
        self._rate = sample_rate
        self._pts = 0
        if fmt is AudioFormat.OGG_OPUS:
            self._container = av.open(
                self._sink, mode="w", format="ogg", buffer_size=4096,
                container_options={"page_duration": str(_OGG_PAGE_MICROSECONDS),
                                   "flush_packets": "1"},
            )
            codec, rate = "libopus", _OPUS_RATE
        else:
            self._container = av.open(self._sink, mode="w", format="mp3", buffer_size=4096,
                                      container_options={"flush_packets": "1"})
            codec, rate = "libmp3lame", _nearest_mp3_rate(sample_rate)
        # PyAV resamples pushed frames to the codec's rate and frame size by itself.
        self._stream = cast(av.AudioStream,
                            self._container.add_stream(codec, rate=rate, layout="mono"))
        self._stream.bit_rate = bit_rate
        # Write the container header now: a stream's first bytes then go out with the
        # first push, and a stream closed without audio is still a valid (empty) file.
        self._container.start_encoding()

    def push(self, pcm: np.ndarray) -> bytes:
        if pcm.size:
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self._rate
            frame.time_base = Fraction(1, self._rate)
            frame.pts = self._pts
            self._pts += pcm.size
            self._container.mux(self._stream.encode(frame))
        return self._sink.drain()

    def close(self) -> bytes:
        self._container.mux(self._stream.encode(None))
        self._container.close()
        return self._sink.finish()

    def abort(self) -> None:
        """Release FFmpeg's resources without caring for the output (an error happened)."""
        self._container.close()


def _nearest_mp3_rate(sample_rate: int) -> int:
    """The MP3 rate closest above ``sample_rate`` (never below: that would lose band)."""
    return next((r for r in _MP3_RATES if r >= sample_rate), _MP3_RATES[-1])


def _to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Mono samples as int16, clipping floats to [-1, 1] so loud peaks saturate, not wrap."""
    array = np.asarray(samples)
    if array.ndim != 1:
        raise InvalidArgument(f"expected 1-D mono samples, got shape {array.shape}",
                              reason="INVALID_AUDIO", metadata={"shape": str(array.shape)})
    if array.dtype == np.int16:
        pcm: np.ndarray = array.astype("<i2", copy=False)
        return pcm
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgument(f"expected float or int16 samples, got {array.dtype}",
                              reason="INVALID_AUDIO", metadata={"dtype": str(array.dtype)})
    scaled = np.clip(np.nan_to_num(array, nan=0.0), -1.0, 1.0) * 32767.0
    clipped: np.ndarray = np.rint(scaled).astype("<i2")
    return clipped


def _wav_header(sample_rate: int, *, data_bytes: int | None) -> bytes:
    """A 44-byte PCM16 mono WAV header; ``data_bytes=None`` writes the streaming sentinel."""
    data_size = _WAV_STREAM_SIZE if data_bytes is None else data_bytes
    riff_size = _WAV_STREAM_SIZE if data_bytes is None else 36 + data_bytes
    return (
        struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
        + struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + struct.pack("<4sI", b"data", data_size)
    )


def _check_rate(sample_rate: int) -> None:
    if not isinstance(sample_rate, (int, np.integer)) or not _MIN_RATE <= sample_rate <= _MAX_RATE:
        raise InvalidArgument(f"impossible sample rate {sample_rate!r}",
                              reason="INVALID_AUDIO", metadata={"sample_rate": str(sample_rate)})


def seal_wav(audio: bytes) -> bytes:
    """Writes the real sizes into a streamed WAV header (its sizes say "until the end").

    Used once a whole file exists (stored or returned), so players and ``wave`` readers
    get exact lengths.
    """
    if len(audio) < 44 or audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
        return audio
    position = 12
    while position + 8 <= len(audio):
        chunk_id, size = struct.unpack_from("<4sI", audio, position)
        if chunk_id == b"data":
            sealed = bytearray(audio)
            struct.pack_into("<I", sealed, 4, len(audio) - 8)
            struct.pack_into("<I", sealed, position + 4, len(audio) - position - 8)
            return bytes(sealed)
        position += 8 + size + (size & 1)
    return audio
