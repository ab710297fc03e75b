"""A user sends English documents and gets Spanish ones back, structure intact."""
from __future__ import annotations

import io
import shutil

import grpc
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from violet.v1 import files_pb2, files_pb2_grpc, resources_pb2, translation_pb2, translation_pb2_grpc

pytestmark = pytest.mark.skipif(shutil.which("apertium") is None, reason="needs apertium-eng-spa (make install)")

COMPLETED = resources_pb2.TASK_STATE_COMPLETED


async def _translate(net, data: bytes, content_type: str, filename: str, source="en", target="es"):
    async with net.channel() as channel:
        stub = translation_pb2_grpc.TranslationServiceStub(channel)
        reply = await stub.CreateDocumentTranslation(translation_pb2.CreateDocumentTranslationRequest(
            document=httpbody_pb2.HttpBody(content_type=content_type, data=data), source_language=source,
            target_language=target, filename=filename, wait_for_completion=True))
        assert reply.task.state == COMPLETED, reply.task.failure_reason
        files = files_pb2_grpc.FilesServiceStub(channel)
        result = (await files.GetFile(files_pb2.GetFileRequest(file_id=reply.task.result_file_id))).content
    return reply.task, result


async def test_html_keeps_markup_and_translates_text(local_net):
    html = b'<html><body><h1 id="t">The black cat</h1><p class="x">The cat is <b>black</b>.</p></body></html>'
    task, result = await _translate(local_net, html, "text/html", "page.html")
    text = result.data.decode()
    assert result.content_type.startswith("text/html")
    assert '<h1 id="t">' in text and '<p class="x">' in text and "<b>" in text
    assert "gato" in text and "negro" in text
    assert task.target_language == "es"


async def test_srt_keeps_indices_and_timings(local_net):
    srt = (b"1\n00:00:01,000 --> 00:00:02,500\nThe house is big.\n\n"
           b"2\n00:00:03,000 --> 00:00:04,000\nI have a dog.\n")
    _, result = await _translate(local_net, srt, "application/x-subrip", "talk.srt")
    lines = result.data.decode().splitlines()
    assert lines[0] == "1" and lines[1] == "00:00:01,000 --> 00:00:02,500"
    assert "00:00:03,000 --> 00:00:04,000" in lines
    assert "casa" in lines[2].lower() and "perro" in result.data.decode().lower()


async def test_docx_keeps_paragraphs_styles_and_bold(local_net):
    import docx

    document = docx.Document()
    document.add_heading("The big house", level=1)
    paragraph = document.add_paragraph("I like ")
    paragraph.add_run("red").bold = True
    paragraph.add_run(" cars.")
    document.add_paragraph("The dog is happy.")
    buffer = io.BytesIO()
    document.save(buffer)
    _, result = await _translate(local_net, buffer.getvalue(),
                                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "doc.docx")
    translated = docx.Document(io.BytesIO(result.data))
    paragraphs = translated.paragraphs
    assert len(paragraphs) == 3
    assert paragraphs[0].style.name == "Heading 1"
    assert "casa" in paragraphs[0].text.lower()
    bold = [run.text for run in paragraphs[1].runs if run.bold]
    assert bold and "roj" in " ".join(bold).lower()
    assert "perro" in paragraphs[2].text.lower()


@pytest.mark.parametrize("kwargs, reason", [
    ({"source": "en", "target": "ja"}, "UNSUPPORTED_LANGUAGE_PAIR"),
    ({"source": "en", "target": "en"}, "SAME_LANGUAGE"),
    ({"source": "", "target": "es"}, "MISSING_FIELD"),
])
async def test_bad_translation_requests(local_net, kwargs, reason):
    async with local_net.channel() as channel:
        stub = translation_pb2_grpc.TranslationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateDocumentTranslation(translation_pb2.CreateDocumentTranslationRequest(
                document=httpbody_pb2.HttpBody(content_type="text/plain", data=b"Hello."),
                source_language=kwargs["source"], target_language=kwargs["target"]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_details_pb2.ErrorInfo()
    rpc_status.from_call(caught.value).details[0].Unpack(info)
    assert info.reason == reason


async def test_unsupported_format_is_refused_naming_the_supported_ones(local_net):
    from violet.v1 import tasks_pb2, tasks_pb2_grpc

    async with local_net.channel() as channel:
        stub = translation_pb2_grpc.TranslationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateDocumentTranslation(translation_pb2.CreateDocumentTranslationRequest(
                document=httpbody_pb2.HttpBody(content_type="application/pdf", data=b"%PDF-1.4 binary \x00\x01\x02"),
                source_language="en", target_language="es", filename="paper.pdf"))
        listing = await tasks_pb2_grpc.TasksServiceStub(channel).ListTasks(tasks_pb2.ListTasksRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_details_pb2.ErrorInfo()
    rpc_status.from_call(caught.value).details[0].Unpack(info)
    assert info.reason == "UNSUPPORTED_FORMAT"
    assert "docx" in caught.value.details()
    assert not listing.tasks
