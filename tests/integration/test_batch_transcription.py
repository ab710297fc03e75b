"""A user uploads a file, follows the task and fetches results."""
from __future__ import annotations

from google.api import httpbody_pb2
from violet.v1 import files_pb2, files_pb2_grpc, tasks_pb2, tasks_pb2_grpc, transcription_pb2, transcription_pb2_grpc

from tests.helpers import wer

COMPLETED = 5


async def test_upload_goes_queued_to_completed_and_file_is_identical(local_net, jfk_flac, jfk_text):
    data = jfk_flac.read_bytes()
    async with local_net.channel() as channel:
        transcription = transcription_pb2_grpc.TranscriptionServiceStub(channel)
        tasks = tasks_pb2_grpc.TasksServiceStub(channel)
        files = files_pb2_grpc.FilesServiceStub(channel)
        created = await transcription.CreateTranscription(transcription_pb2.CreateTranscriptionRequest(
            audio=httpbody_pb2.HttpBody(content_type="audio/flac", data=data), source_language="en",
            filename="jfk.flac", enable_word_time_offsets=True,
        ))
        assert created.task.state == 1  # QUEUED
        watched = [r.task.state async for r in tasks.WatchTask(tasks_pb2.WatchTaskRequest(task_id=created.task.task_id))]
        assert watched[-1] == COMPLETED
        assert watched == sorted(watched)
        task = (await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=created.task.task_id))).task
        assert task.state == COMPLETED
        assert wer(jfk_text, task.transcript.text) <= 0.10, task.transcript.text
        assert task.transcript.language == "en"
        assert task.transcript.segments and task.transcript.segments[0].words
        assert [a.state for a in task.assignments] == [2]  # SUBMITTED
        assert task.filename == "jfk.flac"
        stored = (await files.GetFile(files_pb2.GetFileRequest(file_id=task.input_file_id))).content
        assert stored.data == data
        assert stored.content_type == "audio/flac"
        result = (await files.GetFile(files_pb2.GetFileRequest(file_id=task.result_file_id))).content
        assert result.content_type == "application/json"
        assert b"fellow Americans" in result.data


async def test_same_idempotency_key_returns_same_task(local_net, jfk_flac):
    request = transcription_pb2.CreateTranscriptionRequest(
        audio=httpbody_pb2.HttpBody(content_type="audio/flac", data=jfk_flac.read_bytes()), idempotency_key="upload-42"
    )
    async with local_net.channel() as channel:
        stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
        first = await stub.CreateTranscription(request)
        second = await stub.CreateTranscription(request)
        listing = await tasks_pb2_grpc.TasksServiceStub(channel).ListTasks(tasks_pb2.ListTasksRequest())
    assert first.task.task_id == second.task.task_id
    assert [t.task_id for t in listing.tasks] == [first.task.task_id]


async def test_wait_for_completion_returns_finished_task_and_lists_show_it(local_net, jfk_flac, jfk_text):
    async with local_net.channel() as channel:
        stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
        reply = await stub.CreateTranscription(transcription_pb2.CreateTranscriptionRequest(
            audio=httpbody_pb2.HttpBody(content_type="audio/flac", data=jfk_flac.read_bytes()),
            wait_for_completion=True,
        ))
        assert reply.task.state == COMPLETED
        assert wer(jfk_text, reply.task.transcript.text) <= 0.10
        tasks = tasks_pb2_grpc.TasksServiceStub(channel)
        completed = await tasks.ListCompletedTasks(tasks_pb2.ListCompletedTasksRequest())
        queued = await tasks.ListTasks(tasks_pb2.ListTasksRequest(state=1))
    assert [t.task_id for t in completed.tasks] == [reply.task.task_id]
    assert not queued.tasks
