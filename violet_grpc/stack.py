"""``violet up``: the whole network on one machine, as child processes.

Wallets first (created under ``HOME/wallets``; miner and validator registered on the local
chain ``HOME/chain.json``), then the miner neuron (it loads models and publishes its
endpoint), the proxy pointed at it, the validator, and Envoy for REST. Calls between them
are hotkey-signed unless ``auth`` is off. Each
child logs to ``HOME/logs/ROLE.log``; the stack waits until every part answers its health
check, prints where it listens, and stops the children on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


@dataclass
class StackConfig:
    """Where the local stack keeps state and listens."""

    home: Path = Path(".violet")
    host: str = "127.0.0.1"
    proxy_port: int = 50051
    miner_port: int = 50061
    rest_port: int | None = 8000
    admin_port: int = 9901
    engines: str = "asr,tts,translate"
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Hotkey-signed calls between proxy, miner and validator (on unless a deployment says otherwise).
    auth: bool = True
    #: Run a validator neuron too (challenges the miner, sets weights on the local chain).
    validator: bool = True
    validator_round_seconds: float = 60.0
    validator_epoch_seconds: float = 300.0


#: Wallet names `violet up` creates under HOME/wallets (hotkey "default" each).
STACK_WALLETS = {"proxy": "violet-proxy", "miner": "violet-miner", "validator": "violet-validator"}
#: Stake the local validator is registered with.
STACK_VALIDATOR_STAKE = 1000.0


def prepare_identities(home: Path) -> dict[str, str]:
    """Creates the stack's wallets and registers miner and validator on the local chain.

    Returns each role's hotkey (SS58). Idempotent: a second `violet up` reuses them.
    """
    from violet_grpc.auth.wallets import coldkey_address, create_wallet
    from violet_grpc.chain import LocalChain

    chain = LocalChain(home / "chain.json", 49)
    hotkeys = {}
    for role, name in STACK_WALLETS.items():
        wallet = create_wallet(name, "default", home / "wallets")
        hotkeys[role] = wallet.hotkey.ss58_address
        if role == "miner":
            chain.register(hotkeys[role], coldkey=coldkey_address(wallet))
        elif role == "validator":
            chain.register(hotkeys[role], coldkey=coldkey_address(wallet), stake=STACK_VALIDATOR_STAKE,
                           validator_permit=True)
    return hotkeys


class Stack:
    """Starts, watches and stops the local processes."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, role: str, argv: list[str]) -> subprocess.Popen[bytes]:
        logs = self.config.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = (logs / f"{role}.log").open("ab")
        # W&B offline runs land in the stack's state home unless WANDB_DIR says otherwise.
        env = {"WANDB_DIR": str(self.config.home), **os.environ, "PYTHONUNBUFFERED": "1", **self.config.extra_env}
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs[role] = proc
        return proc

    def start(self, timeout: float = 180.0) -> None:
        """Starts every part and waits until each is healthy."""
        c = self.config
        c.home.mkdir(parents=True, exist_ok=True)
        proxy_addr = f"{c.host}:{c.proxy_port}"
        miner_addr = f"{c.host}:{c.miner_port}"
        python = sys.executable
        hotkeys = prepare_identities(c.home)

        def identity(role: str) -> list[str]:
            return ["--subtensor.network", "local", "--netuid", "49", "--local-chain", str(c.home / "chain.json"),
                    "--wallet.path", str(c.home / "wallets"), "--wallet.name", STACK_WALLETS[role],
                    "--wallet.hotkey", "default", "--auth", "on" if c.auth else "off",
                    "--proxy-hotkey", hotkeys["proxy"]]

        self._spawn("miner", [python, "-m", "violet_grpc.neurons.miner", "--axon.ip", c.host, "--axon.port",
                              str(c.miner_port), "--engines", c.engines, "--proxy_server_url", proxy_addr,
                              *identity("miner")])
        self._spawn("proxy", [python, "-m", "violet_grpc.proxy.server", "--host", c.host, "--port", str(c.proxy_port),
                              "--task-store", str(c.home / "tasks.db"), "--file-store", str(c.home / "files"),
                              "--miners", miner_addr, *identity("proxy")])
        deadline = time.monotonic() + timeout
        self._wait_grpc("proxy", proxy_addr, deadline)
        self._wait_grpc("miner", miner_addr, deadline)
        if c.validator:
            self._spawn("validator", [python, "-m", "violet_grpc.neurons.validator", "--proxy_server_url", proxy_addr,
                                      "--state-dir", str(c.home / "validator"),
                                      "--round-seconds", str(c.validator_round_seconds),
                                      "--epoch-seconds", str(c.validator_epoch_seconds), *identity("validator")])
            self._wait_log("validator", "violet validator", deadline)
        if c.rest_port is not None:
            self._start_envoy(deadline)

    def _start_envoy(self, deadline: float) -> None:
        from violet_grpc import envoy

        c = self.config
        config_path = envoy.write_config(c.home / "envoy.yaml", rest_port=c.rest_port, proxy_port=c.proxy_port,
                                         admin_port=c.admin_port, host=c.host)
        self._spawn("envoy", envoy.command(config_path))
        self._wait_http("envoy", f"http://{c.host}:{c.rest_port}/health", deadline)

    def _check_alive(self, role: str) -> None:
        proc = self.procs[role]
        if proc.poll() is not None:
            log = self.config.home / "logs" / f"{role}.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{role} exited with code {proc.returncode}; its log ends:\n{tail}")

    def _wait_grpc(self, role: str, address: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._check_alive(role)
            try:
                with grpc.insecure_channel(address) as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{role} did not become healthy at {address}")

    def _wait_log(self, role: str, marker: str, deadline: float) -> None:
        """Waits until a child that serves nothing (the validator) says it is running."""
        log = self.config.home / "logs" / f"{role}.log"
        while time.monotonic() < deadline:
            self._check_alive(role)
            if log.exists() and marker in log.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise TimeoutError(f"{role} did not start (no {marker!r} in {log})")

    def _wait_http(self, role: str, url: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._check_alive(role)
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{role} did not answer at {url}")

    def stop(self) -> None:
        """Stops every child (SIGTERM, then SIGKILL after a grace period)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def run_forever(self) -> None:
        """``violet up``: start, print the endpoints, wait for Ctrl-C or a child to die."""
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            print("starting Violet (miner loads its models first) …", flush=True)
            self.start()
            c = self.config
            print(f"proxy  gRPC  {c.host}:{c.proxy_port}   (grpcurl -plaintext {c.host}:{c.proxy_port} list)")
            print(f"miner  gRPC  {c.host}:{c.miner_port}")
            if c.validator:
                print(f"validator  weights every {c.validator_epoch_seconds:g} s on the local chain "
                      f"({c.home}/chain.json; 'violet chain list --local-chain {c.home}/chain.json')")
            print(f"auth  {'on: hotkey-signed calls' if c.auth else 'OFF'} (wallets in {c.home}/wallets)")
            if c.rest_port is not None:
                print(f"REST  (Envoy) http://{c.host}:{c.rest_port}   (curl http://{c.host}:{c.rest_port}/health)")
            print(f"state and logs in {c.home}/  — Ctrl-C stops", flush=True)
            while True:
                for role in self.procs:
                    self._check_alive(role)
                time.sleep(1)
        except KeyboardInterrupt:
            print("stopping …", flush=True)
        finally:
            self.stop()
