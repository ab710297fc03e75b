"""``violet-validator``: a registered validator neuron.

Checks registration (and warns when the hotkey has no validator permit: the chain would
refuse its weights), loads its own models (Piper to make challenges, faster-whisper to
check speech, Apertium for translation references), then runs the scoring loop:
challenge rounds every ``--round-seconds``, organic evaluation through the proxy
(``--proxy_server_url``), weights every ``--epoch-seconds``.

    python -m violet_grpc.neurons.validator --netuid 49 --subtensor.network finney \\
        --wallet.name validator --wallet.hotkey default \\
        --proxy_server_url proxy.example:50051 --proxy-hotkey 5F...
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from violet_grpc import errors
from violet_grpc.neurons._common import exit_on_error, parse, registered_identity, setup_logging
from violet_grpc.settings import ValidatorSettings
from violet_grpc.validator.service import build_validator, load_validator_engines

log = logging.getLogger(__name__)


async def run(settings: ValidatorSettings) -> None:
    """Registration check, engines, then the loop until SIGINT/SIGTERM."""
    identity, uid = await registered_identity(settings)
    neuron = (await identity.chain.metagraph()).by_uid(uid)
    if neuron is None or not neuron.validator_permit:
        log.warning("hotkey %s (uid %d) has no validator permit on netuid %d: miners will refuse its calls and the "
                    "chain its weights until it has one (stake more)", identity.hotkey, uid, identity.chain.netuid)
    engines = await asyncio.to_thread(load_validator_engines, settings)
    validator = build_validator(settings, identity, engines)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"violet validator {identity.hotkey} uid {uid} on netuid {identity.chain.netuid} "
          f"({identity.chain.network}); challenges: {', '.join(validator.rounds.kinds()) or 'none'}", flush=True)
    await validator.run(round_seconds=settings.round_seconds, epoch_seconds=settings.epoch_seconds, stop=stop)
    await identity.chain.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``violet-validator`` / ``python -m violet_grpc.neurons.validator``."""
    settings = parse(ValidatorSettings, argv, "violet-validator",
                     "Run a Violet validator neuron (challenges, organic evaluation, weights).")
    setup_logging(settings.logging_debug)
    try:
        asyncio.run(run(settings))
    except errors.VioletError as exc:
        exit_on_error(exc)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
