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
