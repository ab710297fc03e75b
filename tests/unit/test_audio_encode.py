"""Encoding to WAV, Ogg/Opus, MP3 and raw PCM, whole and streamed."""
from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from violet_grpc.audio.decode import decode_file
from violet_grpc.audio.encode import (
    AudioFormat,
    StreamingEncoder,
    content_type,
    encode,
    file_extension,
)
from violet_grpc.errors import InvalidArgument

RATE = 22_050  # the default Piper voice's rate: what TTS actually encodes


def tone(seconds: float, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("fmt", "mime", "ext"),
    [
        (AudioFormat.WAV, "audio/wav", ".wav"),
        (AudioFormat.OGG_OPUS, "audio/ogg", ".ogg"),
        (AudioFormat.MP3, "audio/mpeg", ".mp3"),
        (AudioFormat.PCM_S16LE, "audio/L16;rate=22050", ".pcm"),
    ],
)
def test_content_type_and_extension(fmt: AudioFormat, mime: str, ext: str) -> None:
    assert content_type(fmt, RATE) == mime
    assert file_extension(fmt) == ext
    assert StreamingEncoder(fmt, RATE).content_type == mime


def test_raw_pcm_content_type_needs_the_rate() -> None:
    with pytest.raises(InvalidArgument):
        content_type(AudioFormat.PCM_S16LE)


def test_wav_is_standard_pcm16_mono() -> None:
    samples = tone(1.0)
    data = encode(samples, RATE, AudioFormat.WAV)
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    np.testing.assert_allclose(pcm / 32767, samples, atol=1 / 32767)


def test_int16_input_is_kept_bit_exact() -> None:
    pcm = (np.arange(-1000, 1000, dtype=np.int16) * 16).astype(np.int16)
    assert encode(pcm, 16_000, AudioFormat.PCM_S16LE) == pcm.astype("<i2").tobytes()
    assert encode(pcm, 16_000, AudioFormat.WAV)[44:] == pcm.astype("<i2").tobytes()


def test_float_input_is_clipped_not_wrapped() -> None:
    loud = np.array([2.0, -2.0, 0.5, np.nan], dtype=np.float32)
    pcm = np.frombuffer(encode(loud, 16_000, AudioFormat.PCM_S16LE), dtype="<i2")
    assert pcm.tolist() == [32767, -32767, 16384, 0]


@pytest.mark.parametrize(
    ("fmt", "magic"),
    [(AudioFormat.WAV, b"RIFF"), (AudioFormat.OGG_OPUS, b"OggS"), (AudioFormat.MP3, None)],
)
def test_whole_files_decode_back_with_the_same_length(
    fmt: AudioFormat, magic: bytes | None
) -> None:
    data = encode(tone(2.0), RATE, fmt)
    if magic:
        assert data.startswith(magic)
    decoded = decode_file(data)
    assert decoded.duration == pytest.approx(2.0, abs=0.05)
    assert float(np.sqrt(np.mean(decoded.samples**2))) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)


def test_opus_signals_48k_and_mp3_keeps_a_supported_rate() -> None:
    assert decode_file(encode(tone(0.5), RATE, AudioFormat.OGG_OPUS)).source_sample_rate == 48_000
    assert decode_file(encode(tone(0.5), RATE, AudioFormat.MP3)).source_sample_rate == RATE
    odd_rate = decode_file(encode(tone(0.5, 20_000), 20_000, AudioFormat.MP3))
    assert odd_rate.source_sample_rate == 22_050


def test_compressed_formats_are_smaller_than_wav() -> None:
    samples = tone(3.0)
    wav = len(encode(samples, RATE, AudioFormat.WAV))
    assert len(encode(samples, RATE, AudioFormat.OGG_OPUS)) < wav / 5
    assert len(encode(samples, RATE, AudioFormat.MP3)) < wav / 3


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_streaming_gives_bytes_before_close_and_a_valid_whole(fmt: AudioFormat) -> None:
    encoder = StreamingEncoder(fmt, RATE)
    pieces = [encoder.push(tone(1.0)) for _ in range(3)]
    tail = encoder.close()
    assert all(pieces), "every second of audio should produce bytes at once"
    data = b"".join([*pieces, tail])
    if fmt is AudioFormat.PCM_S16LE:
        assert len(data) == 3 * RATE * 2
        return
    decoded = decode_file(data)
    # A streamed MP3 has no Xing header (it cannot seek back), so the encoder's ~50 ms
    # priming delay stays in: a little more slack for it.
    assert decoded.duration == pytest.approx(3.0, abs=0.08 if fmt is AudioFormat.MP3 else 0.05)


def test_streamed_wav_header_says_length_unknown() -> None:
    encoder = StreamingEncoder(AudioFormat.WAV, RATE)
    first = encoder.push(tone(0.1))
    assert first[:4] == b"RIFF" and first[40:44] == b"\xff\xff\xff\xff"
    assert len(first) == 44 + round(0.1 * RATE) * 2
    assert not encoder.push(tone(0.1)).startswith(b"RIFF")


def test_streaming_an_empty_text_still_makes_a_file() -> None:
    encoder = StreamingEncoder(AudioFormat.WAV, RATE)
    assert len(encoder.close()) == 44
    ogg = StreamingEncoder(AudioFormat.OGG_OPUS, RATE)
    assert (ogg.push(np.zeros(0, dtype=np.float32)) + ogg.close()).startswith(b"OggS")


def test_closed_encoder_refuses_more_audio() -> None:
    encoder = StreamingEncoder(AudioFormat.MP3, RATE)
    encoder.push(tone(0.2))
    encoder.close()
    assert encoder.close() == b""
    with pytest.raises(InvalidArgument) as err:
        encoder.push(tone(0.1))
    assert err.value.reason == "STREAM_CLOSED"


def test_encoder_context_manager_releases_on_error() -> None:
    with pytest.raises(RuntimeError), StreamingEncoder(AudioFormat.OGG_OPUS, RATE) as encoder:
        encoder.push(tone(0.1))
        raise RuntimeError("synthesis failed")
    with pytest.raises(InvalidArgument):
        encoder.push(tone(0.1))


@pytest.mark.parametrize(
    "samples",
    [np.zeros((2, 100), dtype=np.float32), np.zeros(100, dtype=np.int32), np.array(["a"])],
    ids=["stereo-array", "int32", "strings"],
)
def test_bad_arrays_are_refused(samples: np.ndarray) -> None:
    with pytest.raises(InvalidArgument) as err:
        encode(samples, RATE, AudioFormat.WAV)
    assert err.value.reason == "INVALID_AUDIO"


@pytest.mark.parametrize("rate", [0, -16_000, 10_000_000])
def test_impossible_rates_are_refused(rate: int) -> None:
    with pytest.raises(InvalidArgument):
        encode(tone(0.1), rate, AudioFormat.OGG_OPUS)
    with pytest.raises(InvalidArgument):
        StreamingEncoder(AudioFormat.WAV, rate)
