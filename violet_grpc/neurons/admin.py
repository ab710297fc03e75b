"""``violet wallet …`` and ``violet chain …``: wallets and the local chain from a terminal.

    violet wallet create --wallet.name miner --wallet.hotkey default [--register]
    violet chain register --wallet.name validator --stake 1000 --validator-permit
    violet chain list
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from violet_grpc import errors
from violet_grpc.auth.wallets import DEFAULT_WALLET_PATH, coldkey_address, create_wallet, load_wallet
from violet_grpc.chain import LocalChain, resolve_netuid

_HOME = Path(os.environ.get("VIOLET_HOME", ".violet"))


def _identity_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wallet.name", dest="wallet_name", default=os.environ.get("BT_WALLET_NAME", "default"))
    parser.add_argument("--wallet.hotkey", dest="wallet_hotkey", default=os.environ.get("BT_WALLET_HOTKEY", "default"))
    parser.add_argument("--wallet.path", dest="wallet_path", default=DEFAULT_WALLET_PATH)


def _chain_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local-chain", default=os.environ.get("VIOLET_LOCAL_CHAIN", str(_HOME / "chain.json")),
                        help="registry file of the local chain")
    parser.add_argument("--netuid", type=int, default=int(os.environ.get("BT_NETUID", "0") or 0))


def _registration_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stake", type=float, default=None, help="stake to record for the hotkey")
    parser.add_argument("--validator-permit", action="store_true", help="give the hotkey a validator permit")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Adds the ``wallet`` and ``chain`` commands to the ``violet`` parser."""
    wallet = sub.add_parser("wallet", help="create btcli-compatible wallets for local runs")
    wallet_sub = wallet.add_subparsers(metavar="ACTION", required=True)
    create = wallet_sub.add_parser("create", help="create a coldkey (if missing) and a hotkey (if missing)")
    _identity_flags(create)
    create.add_argument("--register", action="store_true", help="also register the hotkey on the local chain")
    _chain_flags(create)
    _registration_flags(create)
    create.set_defaults(handler=_cmd_wallet_create)

    chain = sub.add_parser("chain", help="the local chain: register hotkeys, list neurons and weights")
    chain_sub = chain.add_subparsers(metavar="ACTION", required=True)
    register = chain_sub.add_parser("register", help="register a wallet's hotkey (or --hotkey SS58) locally")
    _identity_flags(register)
    register.add_argument("--hotkey", default="", help="an SS58 hotkey instead of a wallet")
    _chain_flags(register)
    _registration_flags(register)
    register.set_defaults(handler=_cmd_chain_register)
    listing = chain_sub.add_parser("list", help="neurons and weights of the local chain")
    _chain_flags(listing)
    listing.set_defaults(handler=_cmd_chain_list)


def _local(args: argparse.Namespace) -> LocalChain:
    return LocalChain(Path(args.local_chain), resolve_netuid("local", args.netuid))


def _register(args: argparse.Namespace, hotkey: str, coldkey: str) -> None:
    neuron = _local(args).register(hotkey, coldkey=coldkey, stake=args.stake,
                                   validator_permit=True if args.validator_permit else None)
    print(json.dumps({"registered": neuron.hotkey, "uid": neuron.uid, "stake": neuron.stake,
                      "validator_permit": neuron.validator_permit, "local_chain": args.local_chain}))


def _cmd_wallet_create(args: argparse.Namespace) -> None:
    wallet = create_wallet(args.wallet_name, args.wallet_hotkey, args.wallet_path)
    print(json.dumps({"wallet": args.wallet_name, "hotkey": args.wallet_hotkey, "path": args.wallet_path,
                      "hotkey_ss58": wallet.hotkey.ss58_address, "coldkey_ss58": coldkey_address(wallet)}))
    if args.register:
        _register(args, wallet.hotkey.ss58_address, coldkey_address(wallet))


def _cmd_chain_register(args: argparse.Namespace) -> None:
    if args.hotkey:
        _register(args, args.hotkey, "")
        return
    wallet = load_wallet(args.wallet_name, args.wallet_hotkey, args.wallet_path)
    _register(args, wallet.hotkey.ss58_address, coldkey_address(wallet))


def _cmd_chain_list(args: argparse.Namespace) -> None:
    chain = _local(args)
    neurons = chain.neurons()
    if not Path(args.local_chain).exists():
        raise errors.NotFound(f"no local chain at {args.local_chain}", reason="LOCAL_CHAIN_NOT_FOUND")
    for n in neurons:
        weights = chain.weights(n.uid)
        print(json.dumps({"uid": n.uid, "hotkey": n.hotkey, "stake": n.stake, "validator_permit": n.validator_permit,
                          "endpoint": n.endpoint, **({"weights": weights} if weights else {})}))
