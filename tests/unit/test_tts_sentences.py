"""Sentence splitting, text checks and option validation shared by every TTS engine."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from violet_grpc.errors import FailedPrecondition, InvalidArgument
from violet_grpc.miner.engines.tts import (
    AudioChunk,
    SynthesisOptions,
    chunk_stream,
    join_chunks,
    split_sentences,
    validate_text,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello world. How are you? I'm fine!", ["Hello world.", "How are you?", "I'm fine!"]),
        ("Mr. Smith met Dr. Jones at 3.30 p.m. yesterday. They talked.",
         ["Mr. Smith met Dr. Jones at 3.30 p.m. yesterday.", "They talked."]),
        ("Use a tool, e.g. A hammer. Or not.", ["Use a tool, e.g. A hammer.", "Or not."]),
        ("Bring fruit, i.e. Apples and pears.", ["Bring fruit, i.e. Apples and pears."]),
        ("Pi is 3.14159. E is 2.718.", ["Pi is 3.14159.", "E is 2.718."]),
        ("It costs $4.50 today. Tomorrow $5.", ["It costs $4.50 today.", "Tomorrow $5."]),
        ("J. F. Kennedy spoke. People listened.", ["J. F. Kennedy spoke.", "People listened."]),
        ("See Fig. 3 and No. 7 below. Done.", ["See Fig. 3 and No. 7 below.", "Done."]),
        ("So did I. Then we left.", ["So did I.", "Then we left."]),
        ("Wait... what? Really!? Yes.", ["Wait... what?", "Really!?", "Yes."]),
        ("Wait... and then nothing.", ["Wait... and then nothing."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ('"Really?" she asked.', ['"Really?" she asked.']),
        ("Visit example.com today. Thanks.", ["Visit example.com today.", "Thanks."]),
        ("The U.S. Army and the U.K. Navy met.", ["The U.S. Army and the U.K. Navy met."]),
        ("Line one\nline two continues.\n\nNew paragraph", ["Line one line two continues.",
                                                          "New paragraph"]),
        ("Title\r\n\r\nBody text here.", ["Title", "Body text here."]),
        ("- first item\n- second item\n1. third", ["- first item", "- second item", "1. third"]),
        ("Hello! :)", ["Hello! :)"]),
        ("Done. !!!", ["Done. !!!"]),
        ("你好。今天天气很好！", ["你好。", "今天天气很好！"]),
        ("no punctuation at all", ["no punctuation at all"]),
        ("  spaced   out\ttext.  ", ["spaced out text."]),
        ("", []),
        (" \n\t ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_long_sentence_is_cut_at_commas_near_the_limit() -> None:
    clause = "the committee reviewed the proposal in detail"  # 45 characters
    text = ", ".join([clause] * 20) + "."
    pieces = split_sentences(text)
    assert len(pieces) > 1
    assert all(len(p) <= 300 for p in pieces)
    assert all(p.endswith(",") for p in pieces[:-1])
    assert all(len(p) > 200 for p in pieces[:-1]), "cuts should come late, not at every comma"
    assert " ".join(pieces) == text


def test_long_sentence_without_commas_is_cut_at_spaces() -> None:
    text = " ".join(["word"] * 200)
    pieces = split_sentences(text, max_chars=100)
    assert all(len(p) <= 100 for p in pieces)
    assert " ".join(pieces) == text


def test_unbreakable_run_is_hard_cut() -> None:
    pieces = split_sentences("x" * 650)
    assert [len(p) for p in pieces] == [300, 300, 50]


def test_validate_text() -> None:
    assert validate_text("  Hello.  ") == "Hello."
    with pytest.raises(InvalidArgument) as empty:
        validate_text(" \n ")
    assert empty.value.reason == "EMPTY_TEXT"
    with pytest.raises(InvalidArgument) as long:
        validate_text("a" * 101, max_chars=100)
    assert long.value.reason == "TEXT_TOO_LONG"
    assert long.value.metadata["max_chars"] == "100"
    assert long.value.metadata["length"] == "101"
    assert validate_text("a" * 5000) == "a" * 5000
    with pytest.raises(InvalidArgument):
        validate_text("a" * 5001)


@pytest.mark.parametrize("speed", [0.0, 0.2, 4.1, -1.0, math.nan, math.inf])
def test_speed_out_of_range_is_refused(speed: float) -> None:
    with pytest.raises(InvalidArgument) as err:
        SynthesisOptions(speed=speed)
    assert err.value.reason == "INVALID_SPEED"
    assert err.value.metadata["field"] == "speed"


@pytest.mark.parametrize("speed", [0.25, 1.0, 4.0])
def test_speed_in_range_is_accepted(speed: float) -> None:
    assert SynthesisOptions(speed=speed).speed == speed


@pytest.mark.parametrize("field", ["noise_scale", "noise_w"])
@pytest.mark.parametrize("value", [-0.1, 2.5, math.nan])
def test_noise_out_of_range_is_refused(field: str, value: float) -> None:
    with pytest.raises(InvalidArgument) as err:
        SynthesisOptions(**{field: value})
    assert err.value.reason == "INVALID_NOISE"


def test_chunk_stream_numbers_chunks_and_always_ends_explicitly() -> None:
    rendered = {"A.": np.ones(3, np.float32), ":)": np.zeros(0, np.float32),
                "B.": np.ones(2, np.float32), "?": np.zeros(0, np.float32)}
    chunks = list(chunk_stream(list(rendered), rendered.__getitem__, 16_000))
    assert [(c.text, c.index, c.is_last) for c in chunks] == [
        ("A.", 0, False), ("B.", 1, False), ("?", 2, True)]


def test_join_chunks_concatenates() -> None:
    parts = [AudioChunk(np.full(n, i, np.float32), 8_000, f"s{i}", i, i == 2)
             for i, n in enumerate([2, 3, 4])]
    whole = join_chunks(parts, "all", 8_000)
    assert whole.samples.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert (whole.index, whole.is_last, whole.text) == (0, True, "all")
    assert whole.duration == pytest.approx(9 / 8_000)


@pytest.mark.skipif(importlib.util.find_spec("TTS") is not None,
                    reason="coqui-tts is installed here; tests/coqui covers it")
def test_coqui_engine_imports_without_torch_and_says_how_to_install(tmp_path) -> None:
    from violet_grpc.miner.engines.coqui_engine import CoquiEngine

    with pytest.raises(FailedPrecondition) as err:
        CoquiEngine(tmp_path / "model.pth", tmp_path / "config.json")
    assert err.value.reason == "ENGINE_NOT_INSTALLED"
    assert "violet-grpc[coqui]" in err.value.message
