"""Validator metrics: the scores it gives miners and the weights it sets.

Logged (``validator/`` prefix): ``score/<miner>`` and ``weight/<miner>`` for every miner,
``score_mean``, ``score_max``, ``miners_scored``, ``weights_sum`` and ``weight_sets`` (how many
times weights were set, with its per-minute rate).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from violet_grpc.telemetry.sink import Telemetry


def log_scores(
    scores: Mapping[str, float], weights: Mapping[str, float], *, telemetry: Telemetry | None = None
) -> None:
    """Records one round of scoring: each miner's score and the weight set for it.

    Call it whenever the validator sets weights (or rescores). It never blocks and never
    raises for telemetry's sake; non-finite values are skipped.

    Args:
        scores: Score per miner (hotkey or uid as a string), e.g. the EMA after this round.
        weights: Normalized weight per miner, as sent to the chain.
        telemetry: Where to log; the process's telemetry by default.
    """
    if telemetry is None:
        from violet_grpc.telemetry import current

        telemetry = current()
    if not telemetry.enabled:
        return
    telemetry.role("validator")
    finite_scores = {str(k): float(v) for k, v in scores.items() if _finite(v)}
    finite_weights = {str(k): float(v) for k, v in weights.items() if _finite(v)}
    for miner, score in finite_scores.items():
        telemetry.gauge(f"validator/score/{miner}", score)
    for miner, weight in finite_weights.items():
        telemetry.gauge(f"validator/weight/{miner}", weight)
    if finite_scores:
        telemetry.gauge("validator/score_mean", sum(finite_scores.values()) / len(finite_scores))
        telemetry.gauge("validator/score_max", max(finite_scores.values()))
    telemetry.gauge("validator/miners_scored", float(len(finite_scores)))
    telemetry.gauge("validator/weights_sum", sum(finite_weights.values()))
    telemetry.count("validator/weight_sets")


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
