"""Telemetry settings, read from the environment (every role shares them)."""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from violet_grpc.settings import DEFAULT_HOME, from_namespace, setting

#: W&B modes that log somewhere (``disabled`` is the same as ``VIOLET_TELEMETRY=off``).
WANDB_MODES = ("offline", "online", "disabled")

log = logging.getLogger(__name__)


@dataclass
class TelemetrySettings:
    """Weights & Biases logging for proxy, miner and validator."""

    enabled: bool = setting(True, "VIOLET_TELEMETRY", "W&B telemetry: on (default) or off")
    wandb_mode: str = setting(
        "offline", "WANDB_MODE", "offline (a local run directory, the default), online (needs WANDB_API_KEY) or disabled"
    )
    wandb_project: str = setting("violet", "WANDB_PROJECT", "W&B project runs are logged to")
    wandb_entity: str = setting("", "WANDB_ENTITY", "W&B team or user (empty: the API key's default)")
    wandb_dir: str = setting(str(DEFAULT_HOME), "WANDB_DIR", "directory W&B writes wandb/<run>/ under (the state home)")
    run_name: str = setting("", "VIOLET_TELEMETRY_RUN_NAME", "W&B run name (default: the process's roles)")
    flush_seconds: float = setting(10.0, "VIOLET_TELEMETRY_FLUSH_SECONDS", "seconds of events aggregated into one W&B step")
    queue_size: int = setting(10000, "VIOLET_TELEMETRY_QUEUE_SIZE", "events buffered before new ones are dropped")

    @property
    def active(self) -> bool:
        """Whether anything will be logged."""
        return self.enabled and self.wandb_mode != "disabled"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> TelemetrySettings:
        """Settings from the environment, defaults elsewhere."""
        settings = from_namespace(cls, argparse.Namespace(), environ)
        if settings.wandb_mode not in WANDB_MODES:
            # A typo in a metrics setting must not stop a server from starting.
            log.warning("WANDB_MODE=%r is not one of %s; logging offline", settings.wandb_mode, ", ".join(WANDB_MODES))
            settings.wandb_mode = "offline"
        return settings
