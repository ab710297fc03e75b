"""The `violet` command as a newcomer uses it, against the processes `violet up` starts."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import wer


def _violet(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "violet_grpc.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_transcribe_batch_prints_text(stack, jfk_flac, jfk_text):
    result = _violet("transcribe", str(jfk_flac), "--server", f"127.0.0.1:{stack.proxy_port}")
    assert result.returncode == 0, result.stderr
    assert wer(jfk_text, result.stdout) <= 0.10, result.stdout


def test_transcribe_stream_prints_finals_and_srt(stack, jfk_flac, jfk_text):
    result = _violet("transcribe", str(jfk_flac), "--stream", "--format", "srt",
                     "--server", f"127.0.0.1:{stack.proxy_port}")
    assert result.returncode == 0, result.stderr
    assert "-->" in result.stdout and result.stdout.startswith("1\n00:00:")
    spoken = " ".join(line for line in result.stdout.splitlines() if line and "-->" not in line and not line.isdigit())
    assert wer(jfk_text, spoken) <= 0.10, result.stdout
    assert "task " in result.stderr


def test_transcribe_json_and_tasks_listing(stack, jfk_flac):
    server = f"127.0.0.1:{stack.proxy_port}"
    result = _violet("transcribe", str(jfk_flac), "--format", "json", "--server", server)
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    assert transcript["language"] == "en" and transcript["segments"]
    listing = _violet("tasks", "list", "--server", server)
    assert listing.returncode == 0, listing.stderr
    assert "TRANSCRIPTION" in listing.stdout and "COMPLETED" in listing.stdout


def test_missing_file_and_unreachable_server_are_clear_errors(stack, tmp_path):
    missing = _violet("transcribe", str(tmp_path / "nope.wav"), "--server", f"127.0.0.1:{stack.proxy_port}")
    assert missing.returncode == 1 and "no such file" in missing.stderr
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all" * 100)
    refused = _violet("transcribe", str(garbage), "--server", f"127.0.0.1:{stack.proxy_port}")
    assert refused.returncode == 1 and "UNSUPPORTED_AUDIO" in refused.stderr


def test_help_lists_the_commands():
    result = _violet("--help")
    assert result.returncode == 0
    for command in ("up", "proxy", "miner", "transcribe", "tasks", "tts", "translate"):
        assert command in result.stdout


def test_tts_stream_writes_audio_and_reports_first_audio(stack, tmp_path):
    out = tmp_path / "hello.wav"
    result = _violet("tts", "Hello there. This is Violet speaking.", "-o", str(out), "--stream",
                     "--server", f"127.0.0.1:{stack.proxy_port}")
    assert result.returncode == 0, result.stderr
    assert "first audio after" in result.stderr
    assert out.read_bytes()[:4] == b"RIFF" and out.stat().st_size > 20_000


def test_translate_writes_the_translated_document(stack, tmp_path):
    import shutil

    if shutil.which("apertium") is None:
        import pytest

        pytest.skip("needs apertium-eng-spa (make install)")
    source = tmp_path / "note.html"
    source.write_text("<p>The cat is <b>black</b>.</p>")
    out = tmp_path / "note.es.html"
    result = _violet("translate", str(source), "--source", "en", "--target", "es", "-o", str(out),
                     "--server", f"127.0.0.1:{stack.proxy_port}")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "<b>" in text and "gato" in text
