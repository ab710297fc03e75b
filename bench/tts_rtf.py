"""TTS real-time factor (synthesis time / audio duration) of each engine that runs here.

Piper runs in the main venv; Coqui needs torch, so run this script with the Coqui venv's
Python too (`make bench` does when `.venv-coqui` exists). Coqui is measured on the tiny
random-weight VITS the tests build (no pretrained Coqui model is available offline), so its
figure shows the engine's overhead, not a production model's speed. Ratios are against Piper
measured in the same run when both run in one interpreter.

    python bench/tts_rtf.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from violet_grpc.miner.engines.tts import SynthesisOptions  # noqa: E402

TEXT = ("The weather is lovely today. Please send the report before noon. Our train leaves from "
        "platform four. She bought fresh bread at the market. Thank you for listening to this message.")


def measure(engine: object, rounds: int) -> tuple[float, float]:
    """Median RTF and median time to the first sentence's audio."""
    rtfs, firsts = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        first, seconds = None, 0.0
        for chunk in engine.synthesize_stream(TEXT, SynthesisOptions()):  # type: ignore[attr-defined]
            first = first if first is not None else time.perf_counter() - started
            seconds += len(chunk.samples) / chunk.sample_rate
        rtfs.append((time.perf_counter() - started) / seconds)
        firsts.append(first or 0.0)
    return statistics.median(rtfs), statistics.median(firsts)


def engines() -> dict[str, object]:
    found: dict[str, object] = {}
    try:
        from violet_grpc.miner.engines.piper_engine import PiperEngine

        found["piper (joe-medium)"] = PiperEngine()
    except Exception as exc:  # an engine that cannot load here is reported, not measured
        print(f"piper: not measured ({exc})")
    try:
        import torch  # noqa: F401

        from tests.coqui.test_coqui_engine import _tiny_vits
        from violet_grpc.miner.engines.coqui_engine import CoquiEngine

        model, config = _tiny_vits(Path(tempfile.mkdtemp()) / "vits")
        found["coqui (tiny VITS)"] = CoquiEngine(model, config, device="cpu", threads=2)
    except ImportError:
        print("coqui: not measured (torch/coqui-tts not in this venv; run with .venv-coqui/bin/python)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = {name: measure(engine, args.rounds) for name, engine in engines().items()}
    base = results.get("piper (joe-medium)", (None, None))[0]
    print(f"\n{'engine':<22}{'RTF':>8}{'first audio':>14}{'vs piper':>10}   goal: RTF < 1 (faster than real time)")
    for name, (rtf, first) in results.items():
        ratio = f"{rtf / base:.2f}x" if base else "-"
        print(f"{name:<22}{rtf:>8.3f}{first * 1000:>11.0f} ms{ratio:>10}   {'met' if rtf < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
