"""Scores by uid, smoothed with an EMA, turned into normalised weights.

Scores are keyed by uid, never by list position, and remember which hotkey earned them: when
a uid changes hands (a miner deregistered and someone else took the slot) the newcomer starts
from zero instead of inheriting its predecessor's reputation.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path


class ScoreBook:
    """Moving averages of round scores, by uid."""

    def __init__(self, alpha: float = 0.3) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.ema: dict[int, float] = {}
        self.hotkeys: dict[int, str] = {}

    def update(self, uid: int, hotkey: str, score: float) -> float:
        """Folds one round's score into the uid's average; returns the new average."""
        if self.hotkeys.get(uid) != hotkey:
            self.ema[uid] = 0.0
            self.hotkeys[uid] = hotkey
        value = self.alpha * max(0.0, min(1.0, score)) + (1 - self.alpha) * self.ema.get(uid, 0.0)
        self.ema[uid] = value
        return value

    def sync(self, registered: Mapping[int, str]) -> None:
        """Forgets uids no longer registered and uids whose hotkey changed."""
        for uid in list(self.ema):
            if registered.get(uid) != self.hotkeys.get(uid):
                self.ema.pop(uid, None)
                self.hotkeys.pop(uid, None)

    def weights(self, uids: Iterable[int] | None = None) -> dict[int, float]:
        """Averages normalised to sum 1 (uids with nothing earned are left out); {} when all are 0."""
        chosen = self.ema if uids is None else {u: self.ema.get(u, 0.0) for u in uids}
        total = sum(v for v in chosen.values() if v > 0)
        if total <= 0:
            return {}
        return {uid: v / total for uid, v in sorted(chosen.items()) if v > 0}

    # -- persistence (a restarted validator keeps its memory) -------------------------------

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"alpha": self.alpha, "scores": {str(u): {"hotkey": self.hotkeys[u], "ema": v} for u, v in self.ema.items()}}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, alpha: float = 0.3) -> ScoreBook:
        book = cls(alpha)
        if path.exists():
            data = json.loads(path.read_text())
            for uid, entry in data.get("scores", {}).items():
                book.ema[int(uid)] = float(entry["ema"])
                book.hotkeys[int(uid)] = str(entry["hotkey"])
        return book
