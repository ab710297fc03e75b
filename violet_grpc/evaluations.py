"""Validators' verdicts on organic tasks, and how the proxy combines them.

A validator scores every miner that answered a completed task (0 worst … 1 best); the
proxy keeps each verdict once per (task, validator) and turns the recent verdicts on a miner
into one routing score: each validator's mean score for the miner, combined across
validators weighted by their stake, so one low-stake validator cannot sink or lift a miner.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from violet_grpc import errors


@dataclass(frozen=True)
class MinerScore:
    """One validator's score for one miner's answer."""

    miner_id: str
    score: float
    word_error_rate: float = 0.0
    latency_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not self.miner_id:
            raise errors.InvalidArgument("every evaluation names a miner_id", reason="MISSING_FIELD",
                                         metadata={"field": "evaluations.miner_id"})
        if not (math.isfinite(self.score) and 0.0 <= self.score <= 1.0):
            raise errors.InvalidArgument(f"score must be between 0 and 1, got {self.score}", reason="INVALID_SCORE",
                                         metadata={"field": "evaluations.score", "miner_id": self.miner_id})
        for name in ("word_error_rate", "latency_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise errors.InvalidArgument(f"{name} must be a non-negative number, got {value}",
                                             reason="INVALID_ARGUMENT", metadata={"field": f"evaluations.{name}"})


@dataclass(frozen=True)
class Evaluation:
    """A validator's verdict on one task.

    Attributes:
        task_id: The task judged.
        validator_id: The validator's hotkey.
        validator_stake: Its stake when the verdict arrived (the weight of its opinion).
        scores: One score per miner that answered.
        create_time: When the proxy recorded it (set by the store).
    """

    task_id: str
    validator_id: str
    validator_stake: float
    scores: tuple[MinerScore, ...] = field(default_factory=tuple)
    create_time: datetime | None = None

    def score_of(self, miner_id: str) -> MinerScore | None:
        """This verdict's score for a miner, if it has one."""
        return next((s for s in self.scores if s.miner_id == miner_id), None)


def combine(miner_id: str, evaluations: Iterable[Evaluation]) -> float | None:
    """The stake-weighted consensus score of a miner, or None when nobody scored it.

    Each validator's scores for the miner are averaged first (a validator that judged many
    tasks counts once), then validators are weighted by their latest stake; with no stake
    anywhere (auth off) they count equally.
    """
    per_validator: dict[str, list[float]] = {}
    stake: dict[str, float] = {}
    for evaluation in evaluations:
        score = evaluation.score_of(miner_id)
        if score is None:
            continue
        per_validator.setdefault(evaluation.validator_id, []).append(score.score)
        stake.setdefault(evaluation.validator_id, max(0.0, evaluation.validator_stake))
    if not per_validator:
        return None
    means = {v: sum(s) / len(s) for v, s in per_validator.items()}
    total = sum(stake[v] for v in means)
    if total <= 0:
        return sum(means.values()) / len(means)
    return sum(stake[v] * m for v, m in means.items()) / total
