"""TranslationService: document translation tasks."""
from __future__ import annotations

from typing import Any

from violet.v1 import translation_pb2, translation_pb2_grpc

from violet_grpc import errors
from violet_grpc.convert import task_to_proto
from violet_grpc.miner.documents import detect_format
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.proxy.uploads import form_flag, form_value, read_upload
from violet_grpc.rpc_errors import translate_errors
from violet_grpc.tasks import TaskSpec, TaskType

DOCUMENT_FIELDS = ("document_file", "file", "document")


def _language(value: str, field: str) -> str:
    code = value.strip().lower()
    if not code:
        raise errors.InvalidArgument(f"{field} is required (an ISO 639-1 code such as 'en')",
                                     reason="MISSING_FIELD", metadata={"field": field})
    if not (2 <= len(code) <= 3 and code.isalpha()):
        raise errors.InvalidArgument(f"{field} {value!r} is not an ISO 639-1 language code",
                                     reason="INVALID_LANGUAGE", metadata={"field": field})
    return code


class TranslationServicer(translation_pb2_grpc.TranslationServiceServicer):
    """Creates document translation tasks."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @translate_errors
    async def CreateDocumentTranslation(
        self, request: translation_pb2.CreateDocumentTranslationRequest, context: Any
    ) -> translation_pb2.CreateDocumentTranslationResponse:
        upload = read_upload(request.document, file_fields=DOCUMENT_FIELDS, max_bytes=self.ctx.max_upload_bytes,
                             what="document")
        source = _language(form_value(upload, "source_language", request.source_language), "source_language")
        target = _language(form_value(upload, "target_language", request.target_language), "target_language")
        if source == target:
            raise errors.InvalidArgument("source_language and target_language are the same", reason="SAME_LANGUAGE",
                                         metadata={"field": "target_language"})
        offered = self.ctx.registry.offered("pairs")
        if offered and f"{source}-{target}" not in offered:
            raise errors.InvalidArgument(
                f"no miner translates {source} to {target}; supported: {', '.join(sorted(offered))}",
                reason="UNSUPPORTED_LANGUAGE_PAIR", metadata={"supported": ",".join(sorted(offered))},
            )
        filename = form_value(upload, "filename", request.filename) or upload.filename
        # Refuse formats no miner can keep before anything is stored (raises UNSUPPORTED_FORMAT).
        detect_format(filename or None, upload.content_type or None, upload.data)
        spec = TaskSpec(
            type=TaskType.DOCUMENT_TRANSLATION, source_language=source, target_language=target,
            filename=filename, redundancy=self.ctx.settings.redundancy,
            idempotency_key=form_value(upload, "idempotency_key", request.idempotency_key),
        )
        task = await self.ctx.orchestrator.create_task(spec, payload=upload.data, content_type=upload.content_type,
                                                       filename=filename)
        if form_flag(upload, "wait_for_completion", request.wait_for_completion):
            task = await self.ctx.orchestrator.wait_final(task.task_id, self.ctx.settings.wait_timeout_seconds)
        return translation_pb2.CreateDocumentTranslationResponse(task=task_to_proto(task))
