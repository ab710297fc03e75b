"""Who may call what: one rule per protected gRPC method.

Methods without a rule are public (the user-facing services: Transcription, Synthesis,
Tasks, Files, System, OpenAI, health, reflection). Protected methods name the role the
signed caller needs and, where the request carries the caller's identity (``miner_id``,
``validator_id``), the field that must equal the signing hotkey, so no hotkey can act as
another.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from violet.v1 import miner_gateway_pb2, miner_pb2, validator_gateway_pb2


class Role(enum.Enum):
    """What a caller must be."""

    #: Any hotkey registered on the subnet (miners talking to the proxy).
    REGISTERED = "registered"
    #: A registered hotkey with a validator permit and at least the minimum stake.
    VALIDATOR = "validator"
    #: The configured proxy hotkey(s), or a validator as above (calls into a miner).
    PROXY_OR_VALIDATOR = "proxy_or_validator"


@dataclass(frozen=True)
class MethodRule:
    """The requirement of one method.

    Attributes:
        role: Who may call it.
        identity_field: Request field that must equal the caller's hotkey (unary requests only).
        receiver_optional: Accept signatures not bound to this server's hotkey. Only for
            side-effect-free methods a caller may need before it knows who serves the
            address (a miner's GetCapabilities, probed at a configured endpoint).
    """

    role: Role
    identity_field: str = ""
    receiver_optional: bool = False


def method_path(module: Any, service: str, method: str) -> str:
    """The gRPC method path (``/package.Service/Method``) from a generated module."""
    descriptor = module.DESCRIPTOR.services_by_name[service]
    return f"/{descriptor.full_name}/{descriptor.methods_by_name[method].name}"


def service_rules(module: Any, service: str, rule: MethodRule, *, overrides: dict[str, MethodRule] | None = None,
                  ) -> dict[str, MethodRule]:
    """One rule for every method of a service, with per-method overrides."""
    descriptor = module.DESCRIPTOR.services_by_name[service]
    overrides = overrides or {}
    return {f"/{descriptor.full_name}/{m.name}": overrides.get(m.name, rule) for m in descriptor.methods}


def proxy_rules() -> dict[str, MethodRule]:
    """The proxy's protected methods: the miner and validator gateways."""
    return {
        **service_rules(miner_gateway_pb2, "MinerGatewayService", MethodRule(Role.REGISTERED, "miner_id")),
        **service_rules(validator_gateway_pb2, "ValidatorGatewayService", MethodRule(Role.VALIDATOR, "validator_id")),
    }


def miner_rules() -> dict[str, MethodRule]:
    """A miner's protected methods: all of MinerService (the proxy and validators call it)."""
    return service_rules(
        miner_pb2, "MinerService", MethodRule(Role.PROXY_OR_VALIDATOR),
        overrides={"GetCapabilities": MethodRule(Role.PROXY_OR_VALIDATOR, receiver_optional=True)},
    )


def merge(*tables: Iterable[tuple[str, MethodRule]] | dict[str, MethodRule]) -> dict[str, MethodRule]:
    """Several rule tables as one."""
    out: dict[str, MethodRule] = {}
    for table in tables:
        out.update(dict(table))
    return out
