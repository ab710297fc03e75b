"""Scoring table tests with known answers: quality, speed, copies, EMA, weights."""
from __future__ import annotations

import pytest

from violet_grpc.validator import scoring
from violet_grpc.validator.scores import ScoreBook
from violet_grpc.validator.scoring import Outcome, audio_fingerprint, transcript_fingerprint


@pytest.mark.parametrize(("reference", "hypothesis", "expected"), [
    ("The cat sat.", "the cat sat", 1.0),
    ("the cat sat on the mat", "the cat sat on a mat", 1 - 1 / 6),
    ("the cat sat", "dog", 0.0),              # WER above 1 is clipped to quality 0
    ("the cat sat", "", 0.0),
])
def test_quality_is_one_minus_wer(reference, hypothesis, expected):
    assert scoring.quality(reference, hypothesis) == pytest.approx(expected)


@pytest.mark.parametrize(("quality", "latency", "budget", "expected"), [
    (1.0, 0.0, 2.0, 1.0),
    (1.0, 2.0, 2.0, 0.75),        # half speed credit at the budget
    (1.0, 6.0, 2.0, 0.625),
    (0.5, 0.0, 2.0, 0.5),
    (0.0, 0.0, 2.0, 0.0),         # fast garbage earns nothing
])
def test_answer_score(quality, latency, budget, expected):
    assert scoring.answer_score(quality, latency, budget) == pytest.approx(expected)


def outcome(uid: int, fingerprint: scoring.Fingerprint, arrived: float, **kw: object) -> Outcome:
    return Outcome(uid=uid, hotkey=f"h{uid}", quality=0.9, latency=0.1, arrived=arrived, fingerprint=fingerprint, **kw)


def test_the_later_of_two_identical_answers_is_the_copy():
    same = transcript_fingerprint("the cat sat", (0.0, 0.4, 0.5, 0.9))
    close = transcript_fingerprint("The cat sat!", (0.01, 0.41, 0.5, 0.9))
    honest = transcript_fingerprint("the cat sat", (0.0, 0.5, 0.6, 1.1))  # same words, its own audio
    outcomes = [outcome(1, same, 1.0), outcome(2, close, 1.3), outcome(3, honest, 1.1)]
    scores, copies = scoring.round_scores(outcomes, budget=1.0)
    assert set(copies) == {"h2"}
    assert scores[2] == 0.0 and scores[1] > 0 and scores[3] > 0


def test_foreign_answers_and_identical_audio_are_copies():
    audio = audio_fingerprint(b"wav-bytes", "hello there", 1.5)
    outcomes = [outcome(1, audio, 2.0), outcome(2, audio_fingerprint(b"wav-bytes", "", 0), 2.5),
                outcome(3, scoring.Fingerprint(), 1.0, foreign=True), outcome(4, scoring.Fingerprint(), 3.0, error="x")]
    scores, copies = scoring.round_scores(outcomes, budget=1.0)
    assert set(copies) == {"h2", "h3"}
    assert scores == {1: pytest.approx(scoring.answer_score(0.9, 0.1, 1.0)), 2: 0.0, 3: 0.0, 4: 0.0}


def test_ema_by_uid_resets_when_the_uid_changes_hands():
    book = ScoreBook(alpha=0.5)
    assert book.update(3, "alice", 1.0) == 0.5
    assert book.update(3, "alice", 1.0) == 0.75
    assert book.update(3, "mallory", 1.0) == 0.5  # a new hotkey on uid 3 starts from zero
    book.update(7, "bob", 0.5)
    assert book.weights() == {3: pytest.approx(0.5 / 0.75), 7: pytest.approx(0.25 / 0.75)}
    book.sync({3: "mallory"})  # bob deregistered
    assert book.weights() == {3: 1.0}
    assert ScoreBook().weights() == {}


def test_scores_survive_a_restart(tmp_path):
    book = ScoreBook(alpha=0.3)
    book.update(1, "a", 0.8)
    book.save(tmp_path / "scores.json")
    again = ScoreBook.load(tmp_path / "scores.json", alpha=0.3)
    assert again.ema == book.ema and again.hotkeys == {1: "a"}
