"""``violet-miner``: a registered miner neuron.

Checks that the hotkey is registered on the subnet (or says which ``btcli`` command
registers it), serves MinerService, publishes its endpoint on chain (``--axon.external_ip``
/ ``--axon.external_port`` when it is reached through NAT or a proxy), and heartbeats to
the proxy (``--proxy_server_url``) with signed calls.

    python -m violet_grpc.neurons.miner --netuid 49 --subtensor.network finney \\
        --wallet.name miner --wallet.hotkey default --axon.port 8091 \\
        --axon.external_ip 203.0.113.7 --proxy_server_url proxy.example:50051 --proxy-hotkey 5F...
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from violet_grpc import errors
from violet_grpc.miner import server as miner_server
from violet_grpc.neurons._common import exit_on_error, parse, registered_identity, setup_logging
from violet_grpc.settings import MinerSettings

log = logging.getLogger(__name__)

_UNROUTABLE = ("", "0.0.0.0", "::")


async def run(settings: MinerSettings) -> None:
    """Registration check, then serve and publish until SIGINT/SIGTERM."""
    identity, uid = await registered_identity(settings)
    ip = settings.external_ip or settings.host
    if ip in _UNROUTABLE:
        raise errors.InvalidArgument(f"cannot publish {ip!r} on chain: pass --axon.external_ip with the address "
                                     "validators reach this miner at", reason="MISSING_SETTING",
                                     metadata={"field": "axon.external_ip"})
    log.info("hotkey %s is uid %d on netuid %d (%s)", identity.hotkey, uid, identity.chain.netuid, identity.chain.network)

    async def publish(port: int) -> None:
        await identity.chain.serve(identity.wallet, ip, settings.external_port or port)
        log.info("published %s:%d on netuid %d", ip, settings.external_port or port, identity.chain.netuid)

    await miner_server.serve(settings, identity, on_listening=publish)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``violet-miner`` / ``python -m violet_grpc.neurons.miner``."""
    settings = parse(MinerSettings, argv, "violet-miner", "Run a Violet miner neuron (registered hotkey, MinerService).")
    setup_logging(settings.logging_debug)
    try:
        asyncio.run(run(settings))
    except errors.VioletError as exc:
        exit_on_error(exc)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
