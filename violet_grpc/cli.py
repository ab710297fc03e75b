"""The ``violet`` command: run the stack, and use it from a terminal.

    violet up                      proxy + miner + validator + Envoy REST on embedded defaults
    violet proxy | miner           run one role (each has its own --help)
    violet transcribe FILE         batch; --stream [--realtime] streams it like a microphone
    violet tasks list | get ID     read tasks
    violet tts "text" -o out.wav   speech; --stream writes audio as it arrives
    violet translate FILE --source en --target es -o out
    violet wallet create | chain register | chain list   wallets and the local chain
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import json_format

from violet_grpc import errors
from violet_grpc.subtitles import FORMATS, render

DEFAULT_SERVER = os.environ.get("VIOLET_SERVER", "127.0.0.1:50051")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``violet`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("proxy", "miner", "validator"):
        _run_role(argv[0], argv[1:])
        return
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        raise SystemExit(2)
    try:
        result = args.handler(args)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    except errors.VioletError as exc:
        print(f"error: {exc.message} ({exc.reason})", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _run_role(role: str, argv: list[str]) -> None:
    if role == "proxy":
        from violet_grpc.proxy.server import main as role_main
    elif role == "validator":
        from violet_grpc.neurons.validator import main as role_main
    else:
        from violet_grpc.miner.server import main as role_main
    role_main(argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="violet", description="Violet: decentralized speech services over gRPC.")
    sub = parser.add_subparsers(metavar="COMMAND")
    sub.add_parser("proxy", help="run the proxy (see 'violet proxy --help')")
    sub.add_parser("miner", help="run a miner (see 'violet miner --help')")
    sub.add_parser("validator", help="run a validator neuron (see 'violet validator --help')")
    from violet_grpc.neurons.admin import add_commands

    add_commands(sub)

    up = sub.add_parser("up", help="start proxy, miner, validator and Envoy locally on embedded defaults")
    up.add_argument("--home", default=os.environ.get("VIOLET_HOME", ".violet"), help="state directory (tasks, files, logs)")
    up.add_argument("--proxy-port", type=int, default=50051, help="proxy gRPC port")
    up.add_argument("--miner-port", type=int, default=50061, help="miner gRPC port")
    up.add_argument("--rest-port", type=int, default=8000, help="Envoy REST port")
    up.add_argument("--no-rest", action="store_true", help="do not start Envoy")
    up.add_argument("--engines", default="asr,tts,translate", help="miner engines to load")
    up.add_argument("--auth", choices=["on", "off"], default=os.environ.get("VIOLET_AUTH", "on"),
                    help="hotkey-signed calls between proxy, miner and validator [env VIOLET_AUTH; default on]")
    up.add_argument("--no-validator", action="store_true", help="do not start the validator")
    up.set_defaults(handler=_cmd_up)

    tr = sub.add_parser("transcribe", help="transcribe an audio file (batch, or --stream)")
    tr.add_argument("file", type=Path)
    tr.add_argument("--server", default=DEFAULT_SERVER, help="proxy gRPC address [env VIOLET_SERVER]")
    tr.add_argument("--language", default="", help="ISO 639-1 code; empty detects")
    tr.add_argument("--stream", action="store_true", help="stream the file and show partial results live")
    tr.add_argument("--realtime", action="store_true", help="with --stream: send audio at real-time pace")
    tr.add_argument("--format", choices=FORMATS, default="text", help="output format")
    tr.add_argument("-o", "--output", type=Path, help="write the result here instead of stdout")
    tr.set_defaults(handler=_cmd_transcribe)

    tasks = sub.add_parser("tasks", help="list tasks or show one")
    tasks.add_argument("action", choices=["list", "get"])
    tasks.add_argument("task_id", nargs="?")
    tasks.add_argument("--server", default=DEFAULT_SERVER)
    tasks.add_argument("--page-size", type=int, default=20)
    tasks.set_defaults(handler=_cmd_tasks)

    tts = sub.add_parser("tts", help="synthesise speech")
    tts.add_argument("text")
    tts.add_argument("-o", "--output", type=Path, required=True)
    tts.add_argument("--server", default=DEFAULT_SERVER)
    tts.add_argument("--voice", default="")
    tts.add_argument("--speed", type=float, default=1.0)
    tts.add_argument("--format", choices=["wav", "mp3", "ogg"], default=None, help="default: from the file extension")
    tts.add_argument("--stream", action="store_true", help="write audio as it arrives and print time to first audio")
    tts.set_defaults(handler=_cmd_tts)

    tl = sub.add_parser("translate", help="translate a document, keeping its format")
    tl.add_argument("file", type=Path)
    tl.add_argument("--source", required=True)
    tl.add_argument("--target", required=True)
    tl.add_argument("-o", "--output", type=Path, required=True)
    tl.add_argument("--server", default=DEFAULT_SERVER)
    tl.set_defaults(handler=_cmd_translate)
    return parser


def _cmd_up(args: argparse.Namespace) -> None:
    from violet_grpc.stack import Stack, StackConfig

    config = StackConfig(home=Path(args.home), proxy_port=args.proxy_port, miner_port=args.miner_port,
                         rest_port=None if args.no_rest else args.rest_port, engines=args.engines,
                         auth=args.auth == "on", validator=not args.no_validator)
    Stack(config).run_forever()


async def _cmd_transcribe(args: argparse.Namespace) -> None:
    from violet_grpc.client import VioletClient

    if not args.file.exists():
        raise errors.InvalidArgument(f"no such file: {args.file}", reason="FILE_NOT_FOUND")
    async with VioletClient(args.server) as client:
        if args.stream:
            transcript = await _stream_file(client, args)
        else:
            transcript = await _batch_file(client, args)
    output = render(transcript, args.format)
    if args.output:
        args.output.write_text(output)
    else:
        sys.stdout.write(output)


async def _batch_file(client: object, args: argparse.Namespace) -> object:
    from violet_grpc.convert import transcript_from_proto

    task_future = asyncio.ensure_future(client.transcribe_file(args.file, language=args.language))  # type: ignore[attr-defined]
    started = time.monotonic()
    spinner = "|/-\\"
    tick = 0
    while not task_future.done():
        if sys.stderr.isatty():
            sys.stderr.write(f"\r{spinner[tick % 4]} transcribing {args.file.name} … {time.monotonic() - started:5.1f} s")
            sys.stderr.flush()
        tick += 1
        await asyncio.wait([task_future], timeout=0.2)
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    task = task_future.result()
    if task.state != 5:  # COMPLETED
        raise errors.FailedPrecondition(f"task {task.task_id} ended {task.state}: {task.failure_reason}",
                                        reason="TASK_NOT_COMPLETED")
    return transcript_from_proto(task.transcript)


async def _stream_file(client: object, args: argparse.Namespace) -> object:
    from violet_grpc.audio.decode import decode_file
    from violet_grpc.client.client import pcm16_mono
    from violet_grpc.transcripts import Segment, Transcript, join_segments
    from violet_grpc.convert import segment_from_proto

    audio = decode_file(args.file)
    pcm = pcm16_mono(audio.samples)
    segments: list[Segment] = []
    tty = sys.stderr.isatty()
    total = audio.duration
    language = ""
    async for event in client.stream_pcm(pcm, realtime=args.realtime, language=args.language):  # type: ignore[attr-defined]
        if event.kind == "final":
            segments.append(segment_from_proto(event.message.final_result.segment))
            if tty:
                sys.stderr.write("\r\033[K")
            print(f"[{event.start:7.2f} → {event.end:7.2f}] {event.text.strip()}", file=sys.stderr)
        elif event.kind == "interim" and tty:
            progress = _bar(event.end / total if total else 0)
            sys.stderr.write(f"\r\033[K{progress} … {event.text.strip()[-60:]}")
            sys.stderr.flush()
        elif event.kind == "summary":
            language = event.message.summary.language
            if tty:
                sys.stderr.write("\r\033[K")
            print(f"task {event.message.summary.task_id}: {event.end:.1f} s of audio", file=sys.stderr)
    return Transcript(text=join_segments(segments), language=language, language_probability=1.0,
                      duration=total, segments=tuple(segments))


def _bar(fraction: float, width: int = 20) -> str:
    filled = int(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + " " * (width - filled) + f"] {fraction * 100:3.0f}%"


async def _cmd_tasks(args: argparse.Namespace) -> None:
    from violet_grpc.client import VioletClient

    async with VioletClient(args.server) as client:
        if args.action == "get":
            if not args.task_id:
                raise errors.InvalidArgument("violet tasks get needs a TASK_ID", reason="MISSING_FIELD")
            task = await client.get_task(args.task_id)
            print(json_format.MessageToJson(task, preserving_proto_field_name=True))
            return
        page = await client.list_tasks(page_size=args.page_size)
        for task in page.tasks:
            text = task.transcript.text[:60] if task.transcript.text else task.failure_reason[:60]
            print(f"{task.task_id}  {_enum_name('TaskType', task.type):26} {_enum_name('TaskState', task.state):10} {text}")
        if page.next_page_token:
            print(f"(more: next_page_token={page.next_page_token})")


def _enum_name(enum: str, value: int) -> str:
    from violet.v1 import resources_pb2

    name = resources_pb2.DESCRIPTOR.enum_types_by_name[enum].values_by_number[value].name
    return name.split("_", 2)[-1] if enum == "TaskType" else name.rsplit("_", 1)[-1]


async def _cmd_tts(args: argparse.Namespace) -> None:
    from violet.v1 import resources_pb2

    from violet_grpc.client import VioletClient

    fmt_name = args.format or {".mp3": "mp3", ".ogg": "ogg", ".opus": "ogg"}.get(args.output.suffix.lower(), "wav")
    fmt = {"wav": resources_pb2.AUDIO_FORMAT_WAV, "mp3": resources_pb2.AUDIO_FORMAT_MP3,
           "ogg": resources_pb2.AUDIO_FORMAT_OGG_OPUS}[fmt_name]
    started = time.monotonic()
    first = None
    async with VioletClient(args.server) as client:
        with args.output.open("wb") as out:
            async for reply in client.synthesize(args.text, voice=args.voice, fmt=fmt, speed=args.speed):
                if first is None:
                    first = time.monotonic() - started
                    if args.stream:
                        print(f"first audio after {first * 1000:.0f} ms", file=sys.stderr)
                out.write(reply.chunk.audio_content)
                if args.stream:
                    out.flush()
                    print(f"  chunk {reply.chunk.sequence}: {reply.chunk.duration_seconds:.2f} s — {reply.chunk.text[:50]}",
                          file=sys.stderr)
                task_id = reply.task_id or ""
    print(f"wrote {args.output} ({time.monotonic() - started:.2f} s; task {task_id})", file=sys.stderr)


async def _cmd_translate(args: argparse.Namespace) -> None:
    from violet_grpc.client import VioletClient

    async with VioletClient(args.server) as client:
        task = await client.translate_file(args.file, source=args.source, target=args.target)
        if task.state != 5:
            raise errors.FailedPrecondition(f"task {task.task_id} ended {task.state}: {task.failure_reason}",
                                            reason="TASK_NOT_COMPLETED")
        body = await client.get_file(task.result_file_id)
    args.output.write_bytes(body.data)
    print(json.dumps({"task_id": task.task_id, "output": str(args.output), "content_type": body.content_type}))


if __name__ == "__main__":
    main()
