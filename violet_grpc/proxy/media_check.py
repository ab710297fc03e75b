"""Early checks of uploaded media, so bad files are refused at upload, not hours later."""
from __future__ import annotations

import asyncio

from violet_grpc import errors
from violet_grpc.audio.decode import iter_decode, probe


def _check(data: bytes, *, video: bool) -> None:
    info = probe(data)
    if video and not info.has_video:
        raise errors.InvalidArgument(
            f"this file is not a video (container {info.container_format!r} has no video stream); "
            "send audio to /api/v1/transcription instead",
            reason="NOT_A_VIDEO",
            metadata={"container": info.container_format},
        )
    if not info.has_audio:
        raise errors.InvalidArgument(
            "the file has no audio track to transcribe", reason="NO_AUDIO_TRACK",
            metadata={"container": info.container_format},
        )
    # Decoding the first seconds catches files whose headers parse but whose data does not.
    for _ in iter_decode(data, chunk_seconds=2.0):
        return
    raise errors.InvalidArgument("the file contains no decodable audio", reason="EMPTY_AUDIO")


async def check_media(data: bytes, *, video: bool = False) -> None:
    """Raises InvalidArgument unless ``data`` is media with a decodable audio track."""
    await asyncio.to_thread(_check, data, video=video)
