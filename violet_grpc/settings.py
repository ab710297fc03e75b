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


DEFAULT_WALLET_PATH = os.environ.get("BT_WALLET_PATH", str(Path.home() / ".bittensor" / "wallets"))


@dataclass
class NeuronSettings:
    """Identity and chain of a process: its wallet, the subnet, and whether calls are signed."""

    network: str = setting(
        "local", "BT_NETWORK", "chain: local (registry file), finney, test, or a ws:// endpoint",
        flag="--subtensor.network",
    )
    netuid: int = setting(0, "BT_NETUID", "subnet uid (0: the network's default; finney 49, test 424)", flag="--netuid")
    wallet_name: str = setting("default", "BT_WALLET_NAME", "wallet (coldkey) name", flag="--wallet.name")
    wallet_hotkey: str = setting("default", "BT_WALLET_HOTKEY", "hotkey name in the wallet", flag="--wallet.hotkey")
    wallet_path: str = setting(DEFAULT_WALLET_PATH, "BT_WALLET_PATH", "folder holding wallets", flag="--wallet.path")
    local_chain: str = setting(
        str(DEFAULT_HOME / "chain.json"), "VIOLET_LOCAL_CHAIN", "registry file of the local chain"
    )
    auth: bool = setting(
        True, "VIOLET_AUTH", "sign and verify miner/validator/proxy calls with hotkeys (on|off)"
    )
    auth_max_age_seconds: float = setting(10.0, "VIOLET_AUTH_MAX_AGE", "seconds a call signature stays fresh")
    nonce_store: str = setting(
        "", "VIOLET_NONCE_STORE", "SQLite file of seen nonces shared by processes on one host (empty: in memory)"
    )
    min_validator_stake: float = setting(
        0.0, "VIOLET_MIN_VALIDATOR_STAKE", "stake a validator needs to call validator methods"
    )
    proxy_hotkey: str = setting(
        "", "VIOLET_PROXY_HOTKEY", "the proxy's hotkey (SS58): miners trust it, callers sign for it"
    )
    logging_debug: bool = setting(False, "VIOLET_DEBUG", "debug logging (on|off)", flag="--logging.debug")


@dataclass
class ProxySettings(NeuronSettings):
    """The proxy: public API, miner/validator gateways, task orchestration."""

    host: str = setting("127.0.0.1", "VIOLET_PROXY_HOST", "address the gRPC server binds")
    port: int = setting(50051, "VIOLET_PROXY_PORT", "gRPC port (0 picks a free one)")
    task_store: str = setting(
        str(DEFAULT_HOME / "tasks.db"), "VIOLET_TASK_STORE",
        "task store URI: sqlite:///PATH, a .db path, or firestore://PROJECT[/PREFIX]",
    )
    file_store: str = setting(
        str(DEFAULT_HOME / "files"), "VIOLET_FILE_STORE", "file store URI: file:///PATH, a path, or gs://BUCKET[/PREFIX]"
    )
    firebase_credentials: str = setting(
        "", "VIOLET_FIREBASE_CREDENTIALS",
        "Firebase service-account JSON for gs:// and firestore:// stores (empty: db/violet.json if present,"
        " else application default credentials)",
    )
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
class MinerSettings(NeuronSettings):
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
    external_ip: str = setting(
        "", "VIOLET_EXTERNAL_IP", "IP published on chain for this miner (default: --axon.ip)", flag="--axon.external_ip"
    )
    external_port: int = setting(
        0, "VIOLET_EXTERNAL_PORT", "port published on chain (default: the bound port)", flag="--axon.external_port"
    )


@dataclass
class ValidatorSettings(NeuronSettings):
    """A validator: challenges miners, evaluates organic work, sets weights."""

    proxy_server_url: str = setting(
        "", "PROXY_SERVER_URL", "proxy gRPC endpoint host:port for organic evaluation (empty: none)",
        flag="--proxy_server_url",
    )
    epoch_seconds: float = setting(
        1200.0, "VIOLET_EPOCH_SECONDS", "seconds between set_weights (finney's rate limit is ~100 blocks)"
    )
    round_seconds: float = setting(20.0, "VIOLET_ROUND_SECONDS", "seconds between challenge rounds")
    ema_alpha: float = setting(0.3, "VIOLET_EMA_ALPHA", "weight of the newest round in the score EMA")
    timeout_seconds: float = setting(30.0, "VIOLET_CHALLENGE_TIMEOUT", "longest a miner may take on a challenge")
    state_dir: str = setting(str(DEFAULT_HOME / "validator"), "VIOLET_VALIDATOR_STATE", "scores and weight logs")
    challenges: list[str] = setting(
        ["transcription", "synthesis", "translation"], "VIOLET_CHALLENGES", "challenge kinds to run"
    )
    seed: int = setting(0, "VIOLET_VALIDATOR_SEED", "random seed of the challenges (0: fresh randomness)")
    cpu_threads: int = setting(0, "VIOLET_CPU_THREADS", "threads for the validator's own models (0 = default)")


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
            # Booleans also work as bare switches (the seed's ``--logging.debug``).
            switch = {"nargs": "?", "const": True} if kind is bool else {}
            parser.add_argument(_flag(f), dest=dest, type=lambda raw, k=kind: _convert(k, raw), default=None,
                                help=help_text, metavar=f.name.upper(), **switch)


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
