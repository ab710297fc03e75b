"""Shared test fixtures: where the recorded speech lives."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.servers", "tests.emulators"]

# W&B telemetry is on by default for real runs; tests that check it install their own
# (tests/telemetry), the rest (and the processes they start) run without it.
os.environ.setdefault("VIOLET_TELEMETRY", "off")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("VIOLET_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


@pytest.fixture(scope="session")
def jfk_flac() -> Path:
    """The 11 s JFK clip from ../shared/fixtures (16 kHz mono FLAC)."""
    path = FIXTURES / "jfk.flac"
    if not path.exists():
        pytest.fail(f"fixture missing: {path} (set VIOLET_FIXTURES)")
    return path


@pytest.fixture(scope="session")
def jfk_text() -> str:
    """The reference transcript of jfk.flac."""
    return JFK_TEXT
