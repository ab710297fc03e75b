"""What both neuron entry points share: flags, logging, the registration check."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from violet_grpc import errors
from violet_grpc import settings as settings_mod
from violet_grpc.auth.identity import Identity, load_identity
from violet_grpc.chain import require_registered

S = TypeVar("S")


def parse(cls: type[S], argv: Sequence[str] | None, prog: str, description: str) -> S:
    """Settings from the seed's flags (``--netuid``, ``--wallet.name`` …) and the environment."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    settings_mod.add_arguments(parser, cls)
    return settings_mod.from_namespace(cls, parser.parse_args(argv))


def setup_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not debug:
        logging.getLogger("bittensor").setLevel(logging.WARNING)


async def registered_identity(settings: Any) -> tuple[Identity, int]:
    """The wallet and chain of the settings, once the hotkey is known to be registered."""
    identity = load_identity(settings)
    uid = await require_registered(identity.chain, identity.hotkey, wallet_name=settings.wallet_name,
                                   wallet_hotkey=settings.wallet_hotkey)
    return identity, uid


def exit_on_error(error: errors.VioletError) -> None:
    """Prints a domain error for a person and exits non-zero."""
    print(f"error: {error.message}", file=sys.stderr)
    raise SystemExit(2)
