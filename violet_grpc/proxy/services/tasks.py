"""TasksService: read and follow tasks."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from violet.v1 import tasks_pb2, tasks_pb2_grpc

from violet_grpc import errors
from violet_grpc.convert import task_to_proto
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.proxy.services.paging import page_size
from violet_grpc.rpc_errors import translate_errors
from violet_grpc.tasks import TaskState, TaskType


def _enum_or_none(enum: type, value: int, field: str) -> Any:
    if value == 0:
        return None
    try:
        return enum(value)
    except ValueError:
        raise errors.InvalidArgument(f"{field} {value} is not a known value", reason="INVALID_ENUM",
                                     metadata={"field": field}) from None


def _task_id(value: str) -> str:
    if not value.strip():
        raise errors.InvalidArgument("task_id is required", reason="MISSING_FIELD", metadata={"field": "task_id"})
    return value.strip()


class TasksServicer(tasks_pb2_grpc.TasksServiceServicer):
    """Lists, gets and watches tasks."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @translate_errors
    async def ListTasks(self, request: tasks_pb2.ListTasksRequest, context: Any) -> tasks_pb2.ListTasksResponse:
        page = await self.ctx.store.list(
            state=_enum_or_none(TaskState, request.state, "state"),
            type=_enum_or_none(TaskType, request.type, "type"),
            page_size=page_size(request.page_size, default=50, maximum=1000),
            page_token=request.page_token,
        )
        return tasks_pb2.ListTasksResponse(tasks=[task_to_proto(t) for t in page.tasks], next_page_token=page.next_page_token)

    @translate_errors
    async def ListCompletedTasks(
        self, request: tasks_pb2.ListCompletedTasksRequest, context: Any
    ) -> tasks_pb2.ListCompletedTasksResponse:
        page = await self.ctx.store.list(
            type=_enum_or_none(TaskType, request.type, "type"),
            page_size=page_size(request.page_size, default=50, maximum=1000),
            page_token=request.page_token,
            completed_only=True,
        )
        return tasks_pb2.ListCompletedTasksResponse(
            tasks=[task_to_proto(t) for t in page.tasks], next_page_token=page.next_page_token
        )

    @translate_errors
    async def GetTask(self, request: tasks_pb2.GetTaskRequest, context: Any) -> tasks_pb2.GetTaskResponse:
        task = await self.ctx.store.get(_task_id(request.task_id))
        return tasks_pb2.GetTaskResponse(task=task_to_proto(task))

    @translate_errors
    async def WatchTask(self, request: tasks_pb2.WatchTaskRequest, context: Any) -> AsyncIterator[tasks_pb2.WatchTaskResponse]:
        task_id = _task_id(request.task_id)
        last = None
        while True:
            task = await self.ctx.store.get(task_id)
            marker = (task.state, task.update_time, len(task.assignments))
            if marker != last:
                last = marker
                yield tasks_pb2.WatchTaskResponse(task=task_to_proto(task))
            if task.state.is_final:
                return
            await self.ctx.orchestrator.events.wait(task_id)
