"""deploy/ stays consistent with what `make up` / `violet up` runs (Compose cannot run here).

The compose file's commands are parsed with each role's real flag parser and compared with
the argv `violet up` (violet_grpc/stack.py) spawns; its ports with the settings' defaults and
Envoy's config; every environment name it or .env.example uses with the names the settings
declare; every file it mounts or builds from must exist.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re

import pytest
import yaml

from tests.conftest import REPO_ROOT
from violet_grpc import settings as settings_mod
from violet_grpc.settings import MinerSettings, ProxySettings, ValidatorSettings
from violet_grpc.stack import Stack, StackConfig
from violet_grpc.telemetry import TelemetrySettings

DEPLOY = REPO_ROOT / "deploy"
ROLE_SETTINGS = {"proxy": ProxySettings, "miner": MinerSettings, "validator": ValidatorSettings}
#: Names read by the SDKs themselves or by settings.DEFAULT_HOME, not by a settings field.
EXTERNAL_ENV = {"VIOLET_HOME", "WANDB_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "FIRESTORE_EMULATOR_HOST",
                "STORAGE_EMULATOR_HOST"}
#: Flags `violet up` passes that compose sets through the environment instead (so .env picks).
FLAGS_AS_ENV = {"--task-store": "VIOLET_TASK_STORE", "--file-store": "VIOLET_FILE_STORE"}
#: Identity flags `violet up` passes that compose sets for every role through the environment.
IDENTITY_AS_ENV = {"--subtensor.network": "BT_NETWORK", "--netuid": "BT_NETUID", "--wallet.path": "BT_WALLET_PATH",
                   "--wallet.name": "BT_WALLET_NAME", "--wallet.hotkey": "BT_WALLET_HOTKEY",
                   "--local-chain": "VIOLET_LOCAL_CHAIN", "--auth": "VIOLET_AUTH", "--proxy-hotkey": "VIOLET_PROXY_HOTKEY"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def stack_argv(tmp_path_factory, monkeypatch_module) -> dict[str, list[str]]:
    """The argv of every process `violet up` starts, without starting anything."""
    spawned: dict[str, list[str]] = {}
    monkeypatch_module.setattr(Stack, "_spawn", lambda self, role, argv: spawned.setdefault(role, argv))
    monkeypatch_module.setattr(Stack, "_wait_grpc", lambda *a: None)
    monkeypatch_module.setattr(Stack, "_wait_http", lambda *a: None)
    monkeypatch_module.setattr(Stack, "_wait_log", lambda *a: None)
    Stack(StackConfig(home=tmp_path_factory.mktemp("stack"))).start()
    return spawned


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def declared_env() -> set[str]:
    names = set(EXTERNAL_ENV)
    for cls in (*ROLE_SETTINGS.values(), TelemetrySettings):
        names |= {f.metadata["env"] for f in dataclasses.fields(cls)}
    return names


def parse_role(role: str, args: list[str]) -> object:
    """Parses a role's flags with the role's real parser (unknown flags exit with an error)."""
    parser = argparse.ArgumentParser(prog=role, exit_on_error=False)
    settings_mod.add_arguments(parser, ROLE_SETTINGS[role])
    return settings_mod.from_namespace(ROLE_SETTINGS[role], parser.parse_args(args), environ={})


def flags(argv: list[str]) -> set[str]:
    return {a for a in argv if a.startswith("--")}


@pytest.mark.parametrize("role", ["proxy", "miner"])
def test_role_commands_match_violet_up(compose, stack_argv, role):
    ours = compose["services"][role]["command"]
    theirs = stack_argv[role]
    assert ours[:3] == ["python", "-m", theirs[2]], (ours[:3], theirs[:3])
    parse_role(role, ours[3:])
    missing = flags(theirs) - flags(ours) - set(FLAGS_AS_ENV) - set(IDENTITY_AS_ENV)
    assert not missing, f"{role}: violet up passes {missing}, compose does not"
    environment = compose["services"][role].get("environment", {})
    for flag, env in IDENTITY_AS_ENV.items():
        if flag in theirs:
            assert env in environment, f"{role}: violet up passes {flag}, compose sets no {env}"
    for flag, env in FLAGS_AS_ENV.items():
        if flag in theirs and role == "proxy":
            assert env in compose["services"][role]["environment"]


def test_validator_command_parses_with_validator_settings(compose, stack_argv):
    command = compose["services"]["validator"]["command"]
    assert command[:2] == ["python", "-m"]
    settings = parse_role("validator", command[3:])
    assert settings.proxy_server_url == "proxy:50051"
    if "validator" in stack_argv:
        assert command[2] == stack_argv["validator"][2]
    if importlib.util.find_spec(command[2].rsplit(".", 1)[0]) is None or importlib.util.find_spec(command[2]) is None:
        pytest.skip(f"{command[2]} is not built yet (issue 6 adds the validator neuron)")


def test_envoy_command_and_config_match_violet_up(compose, stack_argv):
    ours = compose["services"]["envoy"]["command"]
    theirs = stack_argv["envoy"]
    assert ours[0] == "envoy" and ours[1:] [::2] == theirs[1:][::2]  # same flags in the same order
    config = (DEPLOY / "envoy.yaml").read_text()
    assert ours[ours.index("--config-path") + 1] == "/etc/envoy/envoy.yaml"
    admin = re.search(r"^admin:.*?port_value:\s*(\d+)", config, re.DOTALL | re.MULTILINE).group(1)
    assert ours[ours.index("--base-id") + 1] == admin
    assert ours[ours.index("--log-level") + 1] == theirs[theirs.index("--log-level") + 1]
    # Envoy listens on the REST port and forwards to the proxy service on the proxy's port.
    assert f"port_value: {StackConfig().rest_port}" in config
    assert f"address: proxy, port_value: {ProxySettings().port}" in config
    mounts = dict(v.split(":")[:2][::-1] for v in compose["services"]["envoy"]["volumes"])
    assert (DEPLOY / mounts["/etc/envoy/envoy.yaml"]).resolve() == DEPLOY / "envoy.yaml"
    descriptor = re.search(r'proto_descriptor: "([^"]+)"', config).group(1)
    assert (DEPLOY / mounts[descriptor]).resolve() == REPO_ROOT / "gen" / "violet.binpb"


def test_envoy_yaml_is_the_rendered_template(tmp_path):
    """deploy/envoy.yaml is what its own header's regenerate command renders today."""
    from violet_grpc import envoy

    config = (DEPLOY / "envoy.yaml").read_text()
    command = re.search(r"Regenerate with:\n#\s+python -m violet_grpc\.envoy (.+)\n", config).group(1).split()
    out = tmp_path / "envoy.yaml"
    command[command.index("--write") + 1] = str(out)
    envoy.main(command)
    rendered = out.read_text().replace(str(out), "deploy/envoy.yaml")
    assert rendered == config, "deploy/envoy.yaml is stale: rerun the command in its header"


def test_ports_are_the_settings_defaults(compose):
    published = {name: [p.split(":") for p in svc.get("ports", [])] for name, svc in compose["services"].items()}
    stack = StackConfig()
    assert published["proxy"] == [[str(stack.proxy_port)] * 2] and stack.proxy_port == ProxySettings().port
    assert published["miner"] == [[str(stack.miner_port)] * 2] and stack.miner_port == MinerSettings().port
    assert published["envoy"] == [[str(stack.rest_port)] * 2]
    miner = parse_role("miner", compose["services"]["miner"]["command"][3:])
    assert miner.port == stack.miner_port and miner.external_ip == "miner"
    assert miner.proxy_server_url == f"proxy:{stack.proxy_port}"
    proxy = parse_role("proxy", compose["services"]["proxy"]["command"][3:])
    assert proxy.port == stack.proxy_port and proxy.miners == [f"miner:{stack.miner_port}"]


def test_every_environment_name_is_declared(compose):
    known = declared_env()
    used: set[str] = set()
    for service in compose["services"].values():
        env = service.get("environment", {})
        used |= set(env)
        used |= {m for v in env.values() for m in re.findall(r"\$\{(\w+)", str(v))}
    example = (DEPLOY / ".env.example").read_text()
    used |= set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert used - known == set(), f"undeclared environment names: {sorted(used - known)}"
    # The telemetry and storage knobs this deployment is about are all in the example.
    for name in ("VIOLET_TELEMETRY", "WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "VIOLET_TASK_STORE",
                 "VIOLET_FILE_STORE", "VIOLET_FIREBASE_CREDENTIALS"):
        assert re.search(rf"^{name}=", example, re.MULTILINE), name


def test_build_files_and_copied_paths_exist(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            dockerfile = context / build["dockerfile"]
            assert dockerfile.is_file(), f"{name}: {dockerfile}"
            for line in dockerfile.read_text().splitlines():
                if line.startswith("COPY "):
                    for source in line.split()[1:-1]:
                        assert (context / source).exists(), f"{dockerfile.name}: COPY {source}"
    for dockerfile in ("Dockerfile.cpu", "Dockerfile.cuda"):
        text = (DEPLOY / dockerfile).read_text()
        extras = re.search(r"pip install '\.\[([\w,]+)\]'", text).group(1).split(",")
        pyproject = (REPO_ROOT / "pyproject.toml").read_text()
        for extra in extras:
            assert re.search(rf"^{extra} = \[", pyproject, re.MULTILINE), f"{dockerfile}: no extra {extra!r}"


def test_firestore_indexes_cover_the_prefix_the_example_uses():
    import json

    indexes = json.loads((DEPLOY / "firestore.indexes.json").read_text())
    example = (DEPLOY / ".env.example").read_text()
    prefix = re.search(r"VIOLET_TASK_STORE=firestore://[\w-]+/([\w-]+)", example).group(1)
    groups = {i["collectionGroup"] for i in indexes["indexes"]}
    assert groups == {f"{prefix}_tasks", f"{prefix}_evaluations"}
    assert all(len(i["fields"]) >= 2 for i in indexes["indexes"])  # single-field indexes are automatic
