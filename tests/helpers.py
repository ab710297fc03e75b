"""Helpers for tests: free ports, audio loading, WER."""
from __future__ import annotations

import socket
from pathlib import Path

import av
import numpy as np

from violet_grpc.proxy.aggregator import word_error_rate


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_pcm16(path: Path, rate: int = 16000) -> bytes:
    """A file's audio as mono 16-bit little-endian PCM at ``rate`` (decoded with PyAV)."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        blocks = [frame.to_ndarray().reshape(-1) for f in container.decode(audio=0) for frame in resampler.resample(f)]
        blocks += [frame.to_ndarray().reshape(-1) for frame in resampler.resample(None)]
    return np.concatenate(blocks).astype("<i2").tobytes()


def wer(reference: str, hypothesis: str) -> float:
    """Normalised word error rate (lower case, no punctuation)."""
    return word_error_rate(reference, hypothesis)


def speech_video(samples: np.ndarray, *, rate: int = 16000, container: str = "mp4", with_audio: bool = True) -> bytes:
    """A small real video (H.264 frames, AAC speech) whose audio track is ``samples``."""
    import io
    from fractions import Fraction

    seconds = len(samples) / rate
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        video = out.add_stream("libx264", rate=5)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="mono") if with_audio else None
        for i in range(max(1, round(seconds * 5))):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 9 % 256, dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 5)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            sound = av.AudioFrame.from_ndarray(samples.astype(np.float32).reshape(1, -1), format="fltp", layout="mono")
            sound.sample_rate, sound.pts = rate, 0
            for packet in audio.encode(sound):
                out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)
    return buffer.getvalue()


def tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A small real WAV file (a quiet tone) that media checks and decoders accept."""
    import io

    samples = (3000 * np.sin(np.arange(int(rate * seconds)) * 0.05)).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()
