"""Twenty seeded runs of the real scoring loop over scripted miners of known quality.

Each run: a LocalChain with four miners (good, slow, garbage, copier) and a validator;
six challenge rounds (transcription and synthesis alternating) through the production
Rounds / scoring / ScoreBook / Validator code; then weights set on the LocalChain. The
weights must rank good > slow > garbage and leave the copier with (next to) nothing in at
least 19 of the 20 runs.
"""
from __future__ import annotations

import random
from pathlib import Path

from tests.chainnet import make_keys
from tests.validator.stub_miners import ScriptedMiner, ScriptedRenderer, World
from violet_grpc.auth.identity import load_identity
from violet_grpc.settings import ValidatorSettings
from violet_grpc.validator.challenges import ChallengeMaker
from violet_grpc.validator.rounds import Budgets, Rounds
from violet_grpc.validator.scores import ScoreBook
from violet_grpc.validator.validator import Validator

KINDS = ("good", "slow", "garbage", "copier")
ROUNDS = 6
#: Scripted latencies are milliseconds; budgets shrink to match.
BUDGETS = Budgets(transcription_base=0.01, transcription_per_second=0.004, synthesis_first_audio=0.02)


async def one_run(seed: int, root: Path) -> dict[str, float]:
    keys = make_keys(root)
    keys.create("validator", stake=1000.0, permit=True)
    for kind in KINDS:
        keys.create(kind)
    rng = random.Random(seed)
    world = World(rng=random.Random(seed + 1))
    miners = [ScriptedMiner(uid=keys.chain.neurons()[i + 1].uid, hotkey=keys.hotkey(kind), kind=kind, world=world,
                            delay=0.05 if kind == "slow" else 0.004)
              for i, kind in enumerate(KINDS)]
    identity = load_identity(ValidatorSettings(**keys.settings("validator")))
    rounds = Rounds(ChallengeMaker(rng, ScriptedRenderer(world)), world.hear, budgets=BUDGETS, timeout=5)
    validator = Validator(identity=identity, rounds=rounds, book=ScoreBook(alpha=0.3), state_dir=root / "state")
    copies_seen = 0
    for _ in range(ROUNDS):
        report = await validator.run_round(miners)
        copies_seen += keys.hotkey("copier") in report.copies
    assert copies_seen == ROUNDS, "the copier is caught in every round"
    await validator.set_weights()
    on_chain = keys.chain.weights(keys.chain.neurons()[0].uid)
    return {m.kind: on_chain.get(m.uid, 0.0) for m in miners}


def ranked(weights: dict[str, float]) -> bool:
    return (weights["good"] > weights["slow"] > weights["garbage"] >= weights["copier"]
            and weights["copier"] < 0.02)


async def test_weights_rank_miners_by_quality_in_19_of_20_seeded_runs(tmp_path: Path):
    results = [await one_run(seed, tmp_path / f"run{seed}") for seed in range(1, 21)]
    good_runs = sum(ranked(w) for w in results)
    assert good_runs >= 19, [w for w in results if not ranked(w)]
    # The weights logged for the last run are what went on chain.
    assert (tmp_path / "run20" / "state" / "weights.jsonl").exists()
