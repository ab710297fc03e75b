"""The neuron entry points: the seed's flags and environment, and the registration check."""
from __future__ import annotations

from pathlib import Path

import pytest

from violet_grpc.neurons import miner as miner_neuron
from violet_grpc.neurons import validator as validator_neuron
from violet_grpc.neurons._common import parse
from violet_grpc.settings import MinerSettings, ValidatorSettings
from violet_grpc.auth import create_wallet


def test_seed_flags_are_accepted():
    settings = parse(MinerSettings, [
        "--netuid", "424", "--subtensor.network", "test", "--wallet.name", "w", "--wallet.hotkey", "h",
        "--logging.debug", "--axon.ip", "0.0.0.0", "--axon.port", "8091", "--axon.external_ip", "203.0.113.7",
        "--axon.external_port", "9091", "--proxy_server_url", "proxy:50051"], "violet-miner", "")
    assert (settings.netuid, settings.network, settings.wallet_name, settings.wallet_hotkey) == (424, "test", "w", "h")
    assert settings.logging_debug and settings.auth
    assert (settings.host, settings.port, settings.external_ip, settings.external_port) == ("0.0.0.0", 8091,
                                                                                            "203.0.113.7", 9091)
    assert settings.proxy_server_url == "proxy:50051"


def test_seed_environment_is_read(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"BT_NETUID": "49", "BT_NETWORK": "finney", "BT_WALLET_NAME": "cold", "BT_WALLET_HOTKEY": "hot",
                        "PROXY_SERVER_URL": "p:1"}.items():
        monkeypatch.setenv(name, value)
    settings = parse(ValidatorSettings, [], "violet-validator", "")
    assert (settings.netuid, settings.network, settings.wallet_name, settings.wallet_hotkey,
            settings.proxy_server_url) == (49, "finney", "cold", "hot", "p:1")


@pytest.mark.parametrize("entry", [miner_neuron.main, validator_neuron.main])
def test_unregistered_hotkey_exits_with_the_command_to_run(entry, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    create_wallet("w", "h", tmp_path / "wallets")
    with pytest.raises(SystemExit) as caught:
        entry(["--wallet.name", "w", "--wallet.hotkey", "h", "--wallet.path", str(tmp_path / "wallets"),
               "--local-chain", str(tmp_path / "chain.json"), "--axon.port", "0"] if entry is miner_neuron.main else
              ["--wallet.name", "w", "--wallet.hotkey", "h", "--wallet.path", str(tmp_path / "wallets"),
               "--local-chain", str(tmp_path / "chain.json")])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "is not registered on netuid 49 of local" in err
    assert "violet chain register --wallet.name w --wallet.hotkey h" in err
