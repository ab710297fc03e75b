"""Typed settings for every role, read from CLI flags and the environment.

Each field names its environment variable and help text once; :func:`parse` builds the
argparse parser from the dataclass, so ``--help``, the environment and the defaults can
never disagree. Precedence: flag > environment > default.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

S = TypeVar("S")

DEFAULT_HOME = Path(os.environ.get("VIOLET_HOME", ".violet"))


def setting(default: Any, env: str, help: str, flag: str | None = None, **extra: Any) -> Any:
    """Declares one setting: its default, environment variable, help text and flag name."""
    meta = {"env": env, "help": help, "flag": flag}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta | extra)
    return field(default=default, metadata=meta | extra)


@dataclass
class ProxySettings:
    """The proxy: public API, miner/validator gateways, task orchestration."""

    host: str = setting("127.0.0.1", "VIOLET_PROXY_HOST", "address the gRPC server binds")
    port: int = setting(50051, "VIOLET_PROXY_PORT", "gRPC port (0 picks a free one)")
    task_store: str = setting(
        str(DEFAULT_HOME / "tasks.db"), "VIOLET_TASK_STORE", "task store URI: sqlite:///PATH or a .db path"
    )
    file_store: str = setting(str(DEFAULT_HOME / "files"), "VIOLET_FILE_STORE", "file store URI: file:///PATH or a path")
    miners: list[str] = setting(
        [], "VIOLET_MINERS", "miner gRPC endpoints host:port (comma-separated in the environment)"
    )
    redundancy: int = setting(1, "VIOLET_REDUNDANCY", "miners that answer each batch task")
    lease_seconds: float = setting(120.0, "VIOLET_LEASE_SECONDS", "how long a miner holds a task before it is retried")
    max_attempts: int = setting(3, "VIOLET_MAX_ATTEMPTS", "failed or expired leases before a task fails")
    max_upload_mb: float = setting(100.0, "VIOLET_MAX_UPLOAD_MB", "largest accepted upload in MB")
    max_stream_seconds: float = setting(3600.0, "VIOLET_MAX_STREAM_SECONDS", "longest accepted live stream")
    wait_timeout_seconds: float = setting(
        300.0, "VIOLET_WAIT_TIMEOUT_SECONDS", "longest a wait_for_completion request blocks"
    )
    heartbeat_seconds: float = setting(5.0, "VIOLET_HEARTBEAT_SECONDS", "interval at which miners are checked")


@dataclass
class MinerSettings:
    """A miner: the Miner gRPC server and its engines."""

    host: str = setting("127.0.0.1", "VIOLET_MINER_HOST", "address the gRPC server binds", flag="--axon.ip")
    port: int = setting(50061, "VIOLET_MINER_PORT", "gRPC port (0 picks a free one)", flag="--axon.port")
    miner_id: str = setting("", "VIOLET_MINER_ID", "identity reported to the proxy (hotkey; default host:port)")
    asr_model: str = setting(
        "tiny.en", "VIOLET_ASR_MODEL", "faster-whisper model: tiny.en (bundled) or a local model directory"
    )
    asr_device: str = setting("auto", "VIOLET_ASR_DEVICE", "cpu, cuda or auto")
    asr_compute_type: str = setting("default", "VIOLET_ASR_COMPUTE_TYPE", "CTranslate2 compute type (int8, float16, ...)")
    cpu_threads: int = setting(0, "VIOLET_CPU_THREADS", "threads per model call (0 = library default)")
    max_slots: int = setting(0, "VIOLET_MAX_SLOTS", "concurrent jobs the miner accepts (0 = CPU cores)")
    tts_engine: str = setting("piper", "VIOLET_TTS_ENGINE", "piper or coqui")
    tts_voices: list[str] = setting(
        [], "VIOLET_TTS_VOICES", "Piper voice .onnx paths (default: the bundled en_US-joe-medium voice)"
    )
    coqui_model: str = setting("", "VIOLET_COQUI_MODEL", "Coqui TTS checkpoint path (with --tts-engine coqui)")
    coqui_config: str = setting("", "VIOLET_COQUI_CONFIG", "Coqui TTS config.json path (with --tts-engine coqui)")
    translator: str = setting("apertium", "VIOLET_TRANSLATOR", "apertium, or a CTranslate2 model directory")
    proxy_server_url: str = setting(
        "", "PROXY_SERVER_URL", "proxy gRPC endpoint host:port to send heartbeats to (empty: none)",
        flag="--proxy_server_url",
    )
    engines: list[str] = setting(
        ["asr", "tts", "translate"], "VIOLET_ENGINES", "engines to load: asr, tts, translate"
    )
    pull_url: str = setting(
        "", "VIOLET_PULL_URL", "proxy REST base URL to pull work from (pull mode, e.g. http://host:8000)"
    )


def _flag(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _convert(kind: Any, raw: str) -> Any:
    if kind is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind == list[str] or str(kind) == "list[str]":
        return [item.strip() for item in raw.split(",") if item.strip()]
    return kind(raw)


def add_arguments(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """Adds one flag per setting of ``cls`` to a parser (help shows the environment name)."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{f.metadata['help']} [env {f.metadata['env']}; default {default!r}]"
        dest = f"{cls.__name__}.{f.name}"
        if kind == list[str]:
            parser.add_argument(_flag(f), dest=dest, action="append", default=None, help=help_text, metavar="A,B")
        else:
            parser.add_argument(_flag(f), dest=dest, type=lambda raw, k=kind: _convert(k, raw), default=None,
                                help=help_text, metavar=f.name.upper())


def from_namespace(cls: type[S], namespace: argparse.Namespace, environ: dict[str, str] | None = None) -> S:
    """Builds settings from parsed flags, falling back to the environment, then defaults."""
    environ = dict(os.environ if environ is None else environ)
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = getattr(namespace, f"{cls.__name__}.{f.name}", None)
        if value is not None and hints[f.name] == list[str]:
            value = [item for chunk in value for item in _convert(list[str], chunk)]
        if value is None and f.metadata["env"] in environ:
            value = _convert(hints[f.name], environ[f.metadata["env"]])
        if value is not None:
            values[f.name] = value
    return cls(**values)


def parse(cls: type[S], argv: Sequence[str] | None = None, *, prog: str | None = None) -> S:
    """Parses one role's settings from argv and the environment."""
    parser = argparse.ArgumentParser(prog=prog, description=(cls.__doc__ or "").strip())
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))
