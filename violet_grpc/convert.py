"""Conversions between wire messages and domain types, used only at the gRPC edge."""
from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2
from violet.v1 import resources_pb2

from violet_grpc.tasks import Assignment, Task
from violet_grpc.transcripts import Segment, Transcript, Word


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf Timestamp, or None for an unset time."""
    if moment is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment)
    return ts


def word_to_proto(word: Word) -> resources_pb2.Word:
    return resources_pb2.Word(
        word=word.text,
        start_seconds=float(word.start),
        end_seconds=float(word.end),
        probability=float(word.probability),
    )


def segment_to_proto(segment: Segment) -> resources_pb2.TranscriptSegment:
    return resources_pb2.TranscriptSegment(
        text=segment.text,
        start_seconds=float(segment.start),
        end_seconds=float(segment.end),
        words=[word_to_proto(w) for w in segment.words],
    )


def segment_from_proto(message: resources_pb2.TranscriptSegment) -> Segment:
    return Segment(
        text=message.text,
        start=message.start_seconds,
        end=message.end_seconds,
        words=tuple(Word(w.word, w.start_seconds, w.end_seconds, w.probability) for w in message.words),
    )


def transcript_to_proto(transcript: Transcript) -> resources_pb2.Transcript:
    return resources_pb2.Transcript(
        text=transcript.text,
        language=transcript.language,
        language_probability=float(transcript.language_probability),
        duration_seconds=float(transcript.duration),
        segments=[segment_to_proto(s) for s in transcript.segments],
    )


def transcript_from_proto(message: resources_pb2.Transcript) -> Transcript:
    return Transcript(
        text=message.text,
        language=message.language,
        language_probability=message.language_probability,
        duration=message.duration_seconds,
        segments=tuple(segment_from_proto(s) for s in message.segments),
    )


def assignment_to_proto(assignment: Assignment) -> resources_pb2.Assignment:
    return resources_pb2.Assignment(
        miner_id=assignment.miner_id,
        state=int(assignment.state),
        lease_expire_time=timestamp(assignment.lease_expire_time),
        attempt=assignment.attempt,
        agreement=assignment.agreement,
        error=assignment.error,
        create_time=timestamp(assignment.create_time),
        submit_time=timestamp(assignment.submit_time),
        processing_seconds=assignment.processing_seconds,
    )


def task_to_proto(task: Task) -> resources_pb2.Task:
    spec = task.spec
    turnaround = (task.complete_time - task.create_time).total_seconds() if task.complete_time else 0.0
    return resources_pb2.Task(
        task_id=task.task_id,
        type=int(spec.type),
        state=int(task.state),
        create_time=timestamp(task.create_time),
        update_time=timestamp(task.update_time),
        complete_time=timestamp(task.complete_time),
        input_file_id=spec.input_file_id,
        result_file_id=task.result_file_id,
        source_language=spec.source_language,
        target_language=spec.target_language,
        transcript=transcript_to_proto(task.transcript) if task.transcript else None,
        failure_reason=task.failure_reason,
        assignments=[assignment_to_proto(a) for a in task.assignments],
        redundancy=spec.redundancy,
        idempotency_key=spec.idempotency_key,
        input_content_type=spec.input_content_type,
        result_content_type=task.result_content_type,
        text=spec.text,
        voice=spec.voice,
        audio_format=int(spec.audio_format),
        filename=spec.filename,
        turnaround_seconds=turnaround,
        speed=spec.speed,
    )
