"""FilesService: stored inputs and results as raw bytes."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from google.api import httpbody_pb2
from violet.v1 import files_pb2, files_pb2_grpc

from violet_grpc import errors
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.rpc_errors import translate_errors
from violet_grpc.storage import StoredFile


def _file_id(value: str) -> str:
    if not value.strip():
        raise errors.InvalidArgument("file_id is required", reason="MISSING_FIELD", metadata={"field": "file_id"})
    return value.strip()


def content_disposition(record: StoredFile) -> str:
    """An RFC 6266 attachment header with an ASCII fallback and the UTF-8 name."""
    name = record.filename or record.file_id
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "'")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


class FilesServicer(files_pb2_grpc.FilesServiceServicer):
    """Serves stored files."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @translate_errors
    async def GetFile(self, request: files_pb2.GetFileRequest, context: Any) -> files_pb2.GetFileResponse:
        record, data = await self.ctx.files.get(_file_id(request.file_id))
        return files_pb2.GetFileResponse(content=httpbody_pb2.HttpBody(content_type=record.content_type, data=data))

    @translate_errors
    async def DownloadFile(self, request: files_pb2.DownloadFileRequest, context: Any) -> files_pb2.DownloadFileResponse:
        record, data = await self.ctx.files.get(_file_id(request.file_id))
        await context.send_initial_metadata((("content-disposition", content_disposition(record)),))
        return files_pb2.DownloadFileResponse(content=httpbody_pb2.HttpBody(content_type=record.content_type, data=data))
