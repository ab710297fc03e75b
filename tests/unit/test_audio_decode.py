"""Decoding user uploads and raw streams to 16 kHz mono float32.

Real files are built with PyAV (the same FFmpeg users' tools use) or taken from the
recorded JFK clip, then decoded back and compared with what went in.
"""
from __future__ import annotations

import gc
import io
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from violet_grpc.audio.decode import (
    AudioEncoding,
    ContainerStreamDecoder,
    Linear16Resampler,
    MulawResampler,
    decode_file,
    iter_decode,
    probe,
    stream_resampler,
)
from violet_grpc.audio.encode import AudioFormat, encode
from violet_grpc.errors import InvalidArgument, NotFound, ResourceExhausted

RATE = 16_000


def tone(seconds: float, rate: int, freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(samples: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def build_media(
    container: str,
    audio_codec: str | None,
    video_codec: str | None = None,
    *,
    seconds: float = 1.0,
    rate: int = 48_000,
    layout: str = "mono",
    codec_options: dict[str, str] | None = None,
) -> bytes:
    """A real file made by FFmpeg's muxers and encoders: a 440 Hz tone and/or a tiny video."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        # Every stream must exist before the first packet is muxed.
        video = out.add_stream(video_codec, rate=10) if video_codec else None
        audio = out.add_stream(audio_codec, rate=rate, layout=layout) if audio_codec else None
        if video is not None:
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
            for i in range(round(seconds * 10)):
                picture = np.full((48, 64, 3), i * 20 % 256, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 10)
                out.mux(video.encode(frame))
            out.mux(video.encode(None))
        if audio is not None:
            if codec_options:
                audio.codec_context.options = codec_options
            channels = 2 if layout == "stereo" else 1
            samples = np.tile(tone(seconds, rate), (channels, 1))
            sound = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
            sound.sample_rate, sound.pts = rate, 0
            out.mux(audio.encode(sound))
            out.mux(audio.encode(None))
    return buf.getvalue()


@pytest.fixture(scope="module")
def jfk(jfk_flac: Path) -> np.ndarray:
    return decode_file(jfk_flac).samples


# ------------------------------------------------------------------------ files


def test_jfk_flac_decodes_to_16k_mono(jfk_flac: Path) -> None:
    decoded = decode_file(jfk_flac)
    assert decoded.sample_rate == RATE and decoded.samples.dtype == np.float32
    assert decoded.samples.ndim == 1
    assert decoded.duration == pytest.approx(11.0, abs=0.05)
    assert decoded.source_format == "flac"
    assert decoded.source_codec == "flac" and decoded.source_sample_rate > 0
    assert 0.02 < rms(decoded.samples) < 0.5
    assert decode_file(jfk_flac.read_bytes()).samples.size == decoded.samples.size


@pytest.mark.parametrize("fmt", [AudioFormat.WAV, AudioFormat.OGG_OPUS, AudioFormat.MP3])
def test_speech_round_trips_through_every_output_format(jfk: np.ndarray, fmt: AudioFormat) -> None:
    decoded = decode_file(encode(jfk, RATE, fmt))
    assert decoded.duration == pytest.approx(jfk.size / RATE, abs=0.05)
    n = min(decoded.samples.size, jfk.size)
    assert np.corrcoef(jfk[:n], decoded.samples[:n])[0, 1] > 0.95
    assert rms(decoded.samples) == pytest.approx(rms(jfk), rel=0.1)


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
@pytest.mark.parametrize("fmt", [AudioFormat.WAV, AudioFormat.OGG_OPUS, AudioFormat.MP3])
def test_tone_round_trip_resamples_to_16k(rate: int, fmt: AudioFormat) -> None:
    decoded = decode_file(encode(tone(2.0, rate), rate, fmt))
    assert decoded.duration == pytest.approx(2.0, abs=0.05)
    assert peak_hz(decoded.samples) == pytest.approx(440, abs=5)
    assert rms(decoded.samples) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)


@pytest.mark.parametrize(
    ("container", "codec", "options", "expected_format"),
    [
        ("webm", "libopus", None, "matroska,webm"),
        ("ipod", "aac", None, "mov,mp4,m4a,3gp,3g2,mj2"),  # .m4a
        ("ogg", "vorbis", {"strict": "-2"}, "ogg"),  # FFmpeg's own Vorbis is "experimental"
        ("flac", "flac", None, "flac"),
    ],
)
def test_audio_containers_decode(
    container: str, codec: str, options: dict[str, str] | None, expected_format: str
) -> None:
    data = build_media(container, codec, rate=44_100 if codec != "libopus" else 48_000,
                       layout="stereo", codec_options=options)
    decoded = decode_file(data)
    assert decoded.source_format == expected_format
    assert decoded.source_channels == 2
    assert decoded.duration == pytest.approx(1.0, abs=0.05)
    assert peak_hz(decoded.samples) == pytest.approx(440, abs=5)


@pytest.mark.parametrize(
    ("container", "audio_codec", "video_codec"),
    [("mp4", "aac", "libx264"), ("matroska", "libopus", "mpeg4"), ("mov", "aac", "mpeg4"),
     ("webm", "libopus", "libvpx")],
)
def test_audio_track_of_a_video_is_extracted(
    container: str, audio_codec: str, video_codec: str
) -> None:
    data = build_media(container, audio_codec, video_codec, seconds=1.5)
    info = probe(data)
    assert info.has_audio and info.has_video
    assert info.duration == pytest.approx(1.5, abs=0.1)
    decoded = decode_file(data)
    assert decoded.duration == pytest.approx(1.5, abs=0.05)
    assert peak_hz(decoded.samples) == pytest.approx(440, abs=5)


def test_video_without_audio_says_so() -> None:
    data = build_media("mp4", None, "libx264")
    info = probe(data)
    assert info.has_video and not info.has_audio and info.video_codec == "h264"
    with pytest.raises(InvalidArgument) as err:
        decode_file(data)
    assert err.value.reason == "NO_AUDIO_TRACK"
    with pytest.raises(InvalidArgument) as err:
        iter_decode(data)
    assert err.value.reason == "NO_AUDIO_TRACK"


def test_probe_of_audio_is_not_a_video(jfk_flac: Path) -> None:
    info = probe(jfk_flac)
    assert info.has_audio and not info.has_video
    assert info.container_format == "flac" and info.audio_codec == "flac"
    assert info.duration == pytest.approx(11.0, abs=0.05)


def _png() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="image2pipe") as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 8, 8, "rgb24"
        out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8))))
        out.mux(stream.encode(None))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "EMPTY_AUDIO"),
        (b"Dear team, please find the minutes attached.\n" * 40, "UNSUPPORTED_AUDIO"),
        (np.random.default_rng(1).bytes(20_000), "UNSUPPORTED_AUDIO"),
        (b'{"audio": "not really"}', "UNSUPPORTED_AUDIO"),
        (_png(), "UNSUPPORTED_AUDIO"),
        # An HLS playlist naming a server file must not make FFmpeg read it.
        (b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
         "UNSUPPORTED_AUDIO"),
    ],
    ids=["empty", "text", "random", "json", "png", "hls-playlist"],
)
def test_non_audio_is_refused_clearly(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        decode_file(data)
    assert err.value.reason == reason
    assert err.value.message


def test_corrupt_audio_is_refused_not_half_decoded() -> None:
    wav = encode(tone(1.0, RATE), RATE, AudioFormat.WAV)
    with pytest.raises(InvalidArgument) as err:
        decode_file(wav[:30])  # header cut in half
    assert err.value.reason in {"UNSUPPORTED_AUDIO", "EMPTY_AUDIO"}
    header_only = wav[:44]
    with pytest.raises(InvalidArgument) as err:
        decode_file(header_only)
    assert err.value.reason == "EMPTY_AUDIO"


def test_missing_and_empty_paths(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        decode_file(tmp_path / "nope.wav")
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(InvalidArgument) as err:
        decode_file(empty)
    assert err.value.reason == "EMPTY_AUDIO"


def test_max_seconds_limits_length(jfk_flac: Path) -> None:
    with pytest.raises(ResourceExhausted) as err:
        decode_file(jfk_flac, max_seconds=5)
    assert err.value.reason == "AUDIO_TOO_LONG" and err.value.metadata["max_seconds"] == "5"
    assert decode_file(jfk_flac, max_seconds=11.0).duration == pytest.approx(11.0, abs=0.05)


def test_max_seconds_holds_when_the_header_does_not_know_the_length() -> None:
    # A raw ADTS AAC stream carries no duration header: only decoding can tell.
    data = build_media("adts", "aac", seconds=3.0)
    with pytest.raises(ResourceExhausted):
        decode_file(data, max_seconds=1.0)
    with pytest.raises(ResourceExhausted):
        list(iter_decode(data, max_seconds=1.0))


def test_iter_decode_yields_fixed_chunks_matching_decode_file(
    jfk_flac: Path, jfk: np.ndarray
) -> None:
    chunks = list(iter_decode(jfk_flac, chunk_seconds=3.0))
    assert [c.size for c in chunks[:-1]] == [3 * RATE] * (len(chunks) - 1)
    assert 0 < chunks[-1].size <= 3 * RATE
    np.testing.assert_allclose(np.concatenate(chunks), jfk, atol=1e-6)


def test_iter_decode_refuses_bad_input_at_the_call() -> None:
    with pytest.raises(InvalidArgument):
        iter_decode(b"definitely not audio" * 50)
    with pytest.raises(InvalidArgument):
        iter_decode(encode(tone(1, RATE), RATE, AudioFormat.WAV), chunk_seconds=0)


# -------------------------------------------------------------------- raw streams


def _pcm16(seconds: float, rate: int, channels: int = 1) -> bytes:
    mono = np.round(tone(seconds, rate) * 32767).astype("<i2")
    return np.repeat(mono, channels).tobytes()  # interleaved, identical channels


@pytest.mark.parametrize("rate", [8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000])
def test_linear16_resampler_gives_16k_length(rate: int) -> None:
    resampler = Linear16Resampler(rate)
    out = np.concatenate([resampler.push(_pcm16(2.0, rate)), resampler.flush()])
    assert out.dtype == np.float32
    assert abs(out.size - 2 * RATE) <= 2
    assert peak_hz(out) == pytest.approx(440, abs=5)
    assert rms(out) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


def test_linear16_handles_odd_byte_splits() -> None:
    pcm = _pcm16(1.0, 44_100, channels=2)
    whole = Linear16Resampler(44_100, channels=2)
    expected = np.concatenate([whole.push(pcm), whole.flush()])
    split = Linear16Resampler(44_100, channels=2)
    pieces = [split.push(pcm[i : i + 333]) for i in range(0, len(pcm), 333)]  # odd sizes
    got = np.concatenate([*pieces, split.flush()])
    assert got.size == expected.size
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert abs(got.size - RATE) <= 2


def test_linear16_partial_sample_waits_for_the_next_push() -> None:
    resampler = Linear16Resampler(16_000)
    assert resampler.push(b"\x00").size == 0
    out = resampler.push(b"\x40")  # completes int16 0x4000 = 0.5
    assert out.tolist() == [0.5]


def test_mulaw_stream_decodes_to_16k() -> None:
    linear = np.round(tone(1.0, 8_000) * 32767).astype(np.int16)
    # G.711 μ-law encoding of the tone (the inverse of what the decoder implements).
    sign = (linear < 0).astype(np.int32)
    magnitude = np.minimum(np.abs(linear.astype(np.int32)), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    codes = (~((sign << 7) | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    resampler = stream_resampler(AudioEncoding.MULAW, 8_000)
    assert isinstance(resampler, MulawResampler)
    out = np.concatenate([resampler.push(codes.tobytes()), resampler.flush()])
    assert abs(out.size - RATE) <= 2
    assert peak_hz(out) == pytest.approx(440, abs=5)
    assert rms(out) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


@pytest.mark.parametrize(("rate", "channels"), [(0, 1), (12_345, 1), (16_000, 0), (16_000, 9)])
def test_stream_resampler_refuses_impossible_formats(rate: int, channels: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        Linear16Resampler(rate, channels)
    assert err.value.reason == "UNSUPPORTED_AUDIO"


def test_push_after_flush_is_refused() -> None:
    resampler = Linear16Resampler(48_000)
    resampler.push(_pcm16(0.1, 48_000))
    resampler.flush()
    with pytest.raises(InvalidArgument) as err:
        resampler.push(b"\x00\x00")
    assert err.value.reason == "STREAM_CLOSED"


@pytest.mark.parametrize(
    ("encoding", "container", "codec", "rate"),
    [
        (AudioEncoding.OGG_OPUS, "ogg", "libopus", 48_000),
        (AudioEncoding.WEBM_OPUS, "webm", "libopus", 48_000),
        (AudioEncoding.FLAC, "flac", "flac", 44_100),
    ],
)
def test_container_streams_decode_as_they_arrive(
    encoding: AudioEncoding, container: str, codec: str, rate: int
) -> None:
    data = build_media(container, codec, seconds=3.0, rate=rate, layout="stereo")
    decoder = stream_resampler(encoding)
    assert isinstance(decoder, ContainerStreamDecoder)
    pushed = [decoder.push(data[i : i + 999]) for i in range(0, len(data), 999)]
    tail = decoder.flush()
    out = np.concatenate([*pushed, tail])
    assert out.size == pytest.approx(3 * RATE, abs=0.02 * RATE)
    assert peak_hz(out) == pytest.approx(440, abs=5)
    # Audio comes out while the stream is still arriving, not only at the end.
    assert sum(p.size for p in pushed) > 0.6 * out.size


def test_container_stream_refuses_garbage_and_mislabels() -> None:
    garbage = stream_resampler(AudioEncoding.OGG_OPUS)
    with pytest.raises(InvalidArgument) as err:
        garbage.push(b"not an ogg stream at all " * 400)
        garbage.flush()
    assert err.value.reason == "UNSUPPORTED_AUDIO"
    mislabeled = stream_resampler(AudioEncoding.FLAC)
    with pytest.raises(InvalidArgument):
        mislabeled.push(encode(tone(1.0, RATE), RATE, AudioFormat.MP3))
        mislabeled.flush()


def test_container_stream_with_no_bytes_is_just_empty() -> None:
    decoder = stream_resampler(AudioEncoding.WEBM_OPUS)
    assert decoder.flush().size == 0
    with pytest.raises(InvalidArgument) as err:
        decoder.push(b"\x1a\x45\xdf\xa3")
    assert err.value.reason == "STREAM_CLOSED"


def test_abandoned_container_stream_releases_its_thread() -> None:
    decoder = stream_resampler(AudioEncoding.FLAC)
    decoder.push(build_media("flac", "flac", seconds=1.0, rate=RATE)[:3000])
    del decoder
    gc.collect()
    for _ in range(100):
        if not any(t.name.startswith("decode-") for t in threading.enumerate()):
            break
        threading.Event().wait(0.01)
    assert not any(t.name.startswith("decode-") for t in threading.enumerate())
