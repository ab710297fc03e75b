"""Task domain types: what the task store keeps and the proxy reasons about.

The enums take their values from the wire enums so converting is a cast, but nothing here
depends on gRPC: storage backends and the orchestrator only see these types.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from violet.v1 import resources_pb2

from violet_grpc.transcripts import Transcript


class TaskType(enum.IntEnum):
    """The kind of work a task carries."""

    TRANSCRIPTION = resources_pb2.TASK_TYPE_TRANSCRIPTION
    STREAMING_TRANSCRIPTION = resources_pb2.TASK_TYPE_STREAMING_TRANSCRIPTION
    VIDEO_TRANSCRIPTION = resources_pb2.TASK_TYPE_VIDEO_TRANSCRIPTION
    SPEECH_SYNTHESIS = resources_pb2.TASK_TYPE_SPEECH_SYNTHESIS
    DOCUMENT_TRANSLATION = resources_pb2.TASK_TYPE_DOCUMENT_TRANSLATION


class TaskState(enum.IntEnum):
    """Where a task is in its life; COMPLETED and FAILED are final."""

    QUEUED = resources_pb2.TASK_STATE_QUEUED
    ASSIGNED = resources_pb2.TASK_STATE_ASSIGNED
    PROCESSING = resources_pb2.TASK_STATE_PROCESSING
    AGGREGATING = resources_pb2.TASK_STATE_AGGREGATING
    COMPLETED = resources_pb2.TASK_STATE_COMPLETED
    FAILED = resources_pb2.TASK_STATE_FAILED

    @property
    def is_final(self) -> bool:
        """True for states a task never leaves."""
        return self in (TaskState.COMPLETED, TaskState.FAILED)


class AssignmentState(enum.IntEnum):
    """The state of one miner's lease on a task."""

    LEASED = resources_pb2.ASSIGNMENT_STATE_LEASED
    SUBMITTED = resources_pb2.ASSIGNMENT_STATE_SUBMITTED
    EXPIRED = resources_pb2.ASSIGNMENT_STATE_EXPIRED
    FAILED = resources_pb2.ASSIGNMENT_STATE_FAILED


class AudioFormat(enum.IntEnum):
    """Audio formats Violet produces (mirrors ``violet.v1.AudioFormat``)."""

    WAV = resources_pb2.AUDIO_FORMAT_WAV
    OGG_OPUS = resources_pb2.AUDIO_FORMAT_OGG_OPUS
    MP3 = resources_pb2.AUDIO_FORMAT_MP3
    PCM_S16LE = resources_pb2.AUDIO_FORMAT_PCM_S16LE


@dataclass(frozen=True)
class TaskSpec:
    """What a client asked for: everything needed to create a task."""

    type: TaskType
    input_file_id: str = ""
    input_content_type: str = ""
    filename: str = ""
    source_language: str = ""
    target_language: str = ""
    text: str = ""
    voice: str = ""
    audio_format: AudioFormat = AudioFormat.WAV
    speed: float = 1.0
    word_timestamps: bool = True
    initial_prompt: str = ""
    redundancy: int = 1
    idempotency_key: str = ""


@dataclass(frozen=True)
class Assignment:
    """One miner's lease on a task and what came of it."""

    miner_id: str
    attempt: int
    state: AssignmentState
    create_time: datetime
    lease_expire_time: datetime
    submit_time: datetime | None = None
    processing_seconds: float = 0.0
    agreement: float = 0.0
    error: str = ""
    #: The miner's answer, exactly as submitted (transcript JSON, file id, ...).
    response: dict | None = None


@dataclass(frozen=True)
class Task:
    """A unit of work submitted by a user and carried out by miners."""

    task_id: str
    spec: TaskSpec
    state: TaskState
    create_time: datetime
    update_time: datetime
    complete_time: datetime | None = None
    result_file_id: str = ""
    result_content_type: str = ""
    transcript: Transcript | None = None
    failure_reason: str = ""
    attempts: int = 0
    assignments: tuple[Assignment, ...] = field(default_factory=tuple)

    @property
    def type(self) -> TaskType:
        """Shortcut for ``spec.type``."""
        return self.spec.type

    def active_leases(self, now: datetime) -> list[Assignment]:
        """Leases still running (not answered, not expired)."""
        return [a for a in self.assignments if a.state == AssignmentState.LEASED and a.lease_expire_time > now]

    def submitted(self) -> list[Assignment]:
        """Assignments whose miner answered."""
        return [a for a in self.assignments if a.state == AssignmentState.SUBMITTED]

    def with_state(self, state: TaskState) -> Task:
        """A copy in another state (for building results in memory)."""
        return replace(self, state=state)


@dataclass(frozen=True)
class TaskResult:
    """What completing a task stores."""

    result_file_id: str = ""
    result_content_type: str = ""
    transcript: Transcript | None = None
    #: Agreement of each miner's answer with the consensus, by miner id.
    agreements: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page of a listing with the opaque token for the next."""

    tasks: list[Task]
    next_page_token: str = ""
