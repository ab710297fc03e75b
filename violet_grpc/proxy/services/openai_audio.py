"""OpenAIAudioService: the OpenAI audio API on top of Violet's own services.

``POST /v1/audio/transcriptions`` becomes an ordinary transcription task (stored, dispatched,
aggregated like any upload) that the call waits for; ``POST /v1/audio/speech`` is a miner's
streamed synthesis gathered into one file. Existing OpenAI clients (the official ``openai``
package, ``curl`` examples from OpenAI's docs) work unchanged with ``base_url`` pointed at
Envoy's ``/v1``.
"""
from __future__ import annotations

import json
import struct
from typing import Any

from google.api import httpbody_pb2
from violet.v1 import openai_audio_pb2, openai_audio_pb2_grpc, resources_pb2, synthesis_pb2

from violet_grpc import errors
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.proxy.media_check import check_media
from violet_grpc.proxy.services.synthesis import SynthesisServicer, validate_speech
from violet_grpc.proxy.uploads import Upload, form_value, form_values, read_upload
from violet_grpc.audio.encode import seal_wav
from violet_grpc.rpc_errors import translate_errors
from violet_grpc.subtitles import FORMATS, render
from violet_grpc.tasks import Task, TaskSpec, TaskState, TaskType
from violet_grpc.transcripts import Transcript

AUDIO_FIELDS = ("file", "audio_file", "audio")

#: MIME types of the transcript formats (OpenAI answers ``text``, ``srt`` and ``vtt`` as text).
_TRANSCRIPT_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}

#: OpenAI's ``response_format`` for speech, as Violet audio formats.
_SPEECH_FORMATS = {
    "mp3": resources_pb2.AUDIO_FORMAT_MP3,
    "opus": resources_pb2.AUDIO_FORMAT_OGG_OPUS,
    "wav": resources_pb2.AUDIO_FORMAT_WAV,
    "pcm": resources_pb2.AUDIO_FORMAT_PCM_S16LE,
}

#: OpenAI's voice names; Violet speaks all of them with the miners' default voice.
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer", "verse"}
)

#: Whisper's language names, which OpenAI's ``verbose_json`` reports instead of codes.
_LANGUAGE_NAMES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog", "mg": "malagasy",
    "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa", "ba": "bashkir",
    "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}


def verbose_json(transcript: Transcript, *, words: bool) -> dict[str, Any]:
    """A transcript in the shape of OpenAI's ``verbose_json`` response.

    Only what Violet knows is filled in: segment ids, times, text (with Whisper's leading
    space) and, when asked for, word timings. Decoder statistics OpenAI adds per segment
    (``avg_logprob``, ``no_speech_prob`` …) are left out rather than made up.
    """
    language = _LANGUAGE_NAMES.get(transcript.language, transcript.language)
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language,
        "duration": round(float(transcript.duration), 3),
        "text": transcript.text.strip(),
        "segments": [
            {
                "id": index,
                "seek": round(segment.start * 100),
                "start": round(float(segment.start), 3),
                "end": round(float(segment.end), 3),
                "text": " " + segment.text.strip(),
                "tokens": [],
                "temperature": 0.0,
            }
            for index, segment in enumerate(transcript.segments)
        ],
    }
    if words:
        body["words"] = [
            {"word": word.text.strip(), "start": round(float(word.start), 3), "end": round(float(word.end), 3)}
            for segment in transcript.segments
            for word in segment.words
        ]
    return body


def transcript_body(transcript: Transcript, response_format: str, *, words: bool) -> httpbody_pb2.HttpBody:
    """The transcript as OpenAI answers it in ``response_format``."""
    if response_format == "json":
        text = json.dumps({"text": transcript.text.strip()}, ensure_ascii=False)
    elif response_format == "verbose_json":
        text = json.dumps(verbose_json(transcript, words=words), ensure_ascii=False)
    else:
        text = render(transcript, response_format)
    return httpbody_pb2.HttpBody(content_type=_TRANSCRIPT_TYPES[response_format], data=text.encode("utf-8"))


def _response_format(upload: Upload) -> str:
    value = form_value(upload, "response_format", "").strip().lower() or "json"
    if value not in FORMATS:
        raise errors.InvalidArgument(f"response_format {value!r} is not one of {', '.join(FORMATS)}",
                                     reason="UNSUPPORTED_RESPONSE_FORMAT", metadata={"field": "response_format"})
    return value


def _granularities(upload: Upload) -> set[str]:
    values = {v.strip().lower() for name in ("timestamp_granularities[]", "timestamp_granularities")
              for v in form_values(upload, name) if v.strip()}
    unknown = values - {"word", "segment"}
    if unknown:
        raise errors.InvalidArgument(f"timestamp_granularities {sorted(unknown)} are not 'word' or 'segment'",
                                     reason="INVALID_TIMESTAMP_GRANULARITY",
                                     metadata={"field": "timestamp_granularities[]"})
    return values


class OpenAIAudioServicer(openai_audio_pb2_grpc.OpenAIAudioServiceServicer):
    """OpenAI-compatible transcription and speech."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self._synthesis = SynthesisServicer(ctx)

    @translate_errors
    async def CreateAudioTranscription(
        self, request: openai_audio_pb2.CreateAudioTranscriptionRequest, context: Any
    ) -> openai_audio_pb2.CreateAudioTranscriptionResponse:
        upload = read_upload(request.form, file_fields=AUDIO_FIELDS, max_bytes=self.ctx.max_upload_bytes, what="audio")
        response_format = _response_format(upload)
        words = "word" in _granularities(upload)
        language = form_value(upload, "language", "").strip().lower()
        await check_media(upload.data)
        spec = TaskSpec(
            type=TaskType.TRANSCRIPTION,
            source_language="" if language == "auto" else language,
            word_timestamps=words,
            initial_prompt=form_value(upload, "prompt", ""),
            redundancy=self.ctx.settings.redundancy,
        )
        task = await self.ctx.orchestrator.create_task(spec, payload=upload.data, content_type=upload.content_type,
                                                       filename=upload.filename)
        task = await self.ctx.orchestrator.wait_final(task.task_id, self.ctx.settings.wait_timeout_seconds)
        transcript = _finished_transcript(task, self.ctx.settings.wait_timeout_seconds)
        # Sent only on success: an error after headers would reach REST clients as a 200.
        await context.send_initial_metadata((("x-violet-task-id", task.task_id),))
        return openai_audio_pb2.CreateAudioTranscriptionResponse(
            body=transcript_body(transcript, response_format, words=words)
        )

    @translate_errors
    async def CreateAudioSpeech(
        self, request: openai_audio_pb2.CreateAudioSpeechRequest, context: Any
    ) -> openai_audio_pb2.CreateAudioSpeechResponse:
        name = request.response_format.strip().lower() or "mp3"
        fmt = _SPEECH_FORMATS.get(name)
        if fmt is None:
            raise errors.InvalidArgument(f"response_format {name!r} is not one of {', '.join(_SPEECH_FORMATS)}",
                                         reason="UNSUPPORTED_FORMAT", metadata={"field": "response_format"})
        text, speed, _ = validate_speech(request.input, request.speed, fmt)
        voice = request.voice.strip()
        if voice.lower() in OPENAI_VOICES:
            voice = ""
        synthesize = synthesis_pb2.SynthesizeRequest(text=text, voice=voice, format=fmt, speed=speed)
        audio, content_type, task_id = bytearray(), "", ""
        # The streamed synthesis does the miner choice and failover, and records the task;
        # its errors abort this call with their own status.
        async for reply in self._synthesis.Synthesize(synthesize, context):
            audio += reply.chunk.audio_content
            content_type = reply.chunk.content_type or content_type
            task_id = reply.task_id or task_id
        if not audio:
            raise errors.Internal("the miner returned no audio", reason="EMPTY_MINER_ANSWER")
        if task_id:
            await context.send_initial_metadata((("x-violet-task-id", task_id),))
        data = seal_wav(bytes(audio)) if fmt == resources_pb2.AUDIO_FORMAT_WAV else bytes(audio)
        return openai_audio_pb2.CreateAudioSpeechResponse(
            audio=httpbody_pb2.HttpBody(content_type=content_type or "application/octet-stream", data=data)
        )


def _finished_transcript(task: Task, waited: float) -> Transcript:
    """The transcript of a final task, or the error that explains why there is none."""
    if task.state == TaskState.COMPLETED and task.transcript is not None:
        return task.transcript
    if task.state == TaskState.FAILED:
        raise errors.Unavailable(f"transcription failed: {task.failure_reason}", reason="TASK_FAILED",
                                 metadata={"task_id": task.task_id})
    raise errors.DeadlineExceeded(
        f"the transcription did not finish within {waited:g} s; follow it at /api/v1/tasks/{task.task_id}",
        reason="TASK_NOT_FINISHED", metadata={"task_id": task.task_id},
    )
