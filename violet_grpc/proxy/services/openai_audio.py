"""OpenAIAudioService: the OpenAI audio API on top of Violet's own services."""
from __future__ import annotations

from typing import Any

from violet.v1 import openai_audio_pb2_grpc

from violet_grpc import errors
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.rpc_errors import translate_errors


class OpenAIAudioServicer(openai_audio_pb2_grpc.OpenAIAudioServiceServicer):
    """Placeholder until the OpenAI-compatible endpoints are served."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @translate_errors
    async def CreateAudioTranscription(self, request: Any, context: Any) -> Any:
        raise errors.Unimplemented("the OpenAI-compatible transcription endpoint is not served yet",
                                   reason="OPENAI_API_UNAVAILABLE")

    @translate_errors
    async def CreateAudioSpeech(self, request: Any, context: Any) -> Any:
        raise errors.Unimplemented("the OpenAI-compatible speech endpoint is not served yet",
                                   reason="OPENAI_API_UNAVAILABLE")
