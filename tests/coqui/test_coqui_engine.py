"""CoquiEngine against a real (tiny, random-weight) VITS model built on the spot.

No model can be downloaded here, so the test trains nothing and downloads nothing: it
builds a 1.3 M-parameter VITS with random weights, saves it as Coqui does (checkpoint +
config.json) and loads it back through the engine, exercising the real loading and
synthesis code. The audio is noise, so the checks are about shape, length and behaviour.

Runs only where ``coqui-tts`` is installed (``make test-coqui``, its own venv).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("TTS")
torch = pytest.importorskip("torch")

from TTS.tts.configs.vits_config import VitsConfig  # noqa: E402
from TTS.tts.models.vits import Vits, VitsArgs  # noqa: E402

from violet_grpc.errors import FailedPrecondition, InvalidArgument  # noqa: E402
from violet_grpc.miner.engines.coqui_engine import CoquiEngine  # noqa: E402
from violet_grpc.miner.engines.tts import SynthesisOptions, TtsEngine  # noqa: E402

SAMPLE_RATE = 16_000
HOP = 256  # product of the decoder's upsample rates below
THREE_SENTENCES = "Hello there. How are you today? The weather is fine."


def _tiny_vits(directory: Path, speakers: list[str] | None = None) -> tuple[Path, Path]:
    """Save a random-weight VITS small enough to build and run in a fraction of a second."""
    args = VitsArgs(
        hidden_channels=16,
        hidden_channels_ffn_text_encoder=32,
        num_heads_text_encoder=2,
        num_layers_text_encoder=1,
        num_layers_flow=1,
        num_layers_posterior_encoder=1,
        init_discriminator=False,
        resblock_type_decoder="2",
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3]],
        upsample_rates_decoder=[8, 8, 4],
        upsample_initial_channel_decoder=32,
        upsample_kernel_sizes_decoder=[16, 16, 8],
        use_speaker_embedding=bool(speakers),
        speaker_embedding_channels=8,
    )
    config = VitsConfig(
        model_args=args,
        use_phonemes=False,  # no espeak needed: characters in, audio out
        text_cleaner="basic_cleaners",
        speakers=speakers or [],
        use_speaker_embedding=bool(speakers),
    )
    config.audio.sample_rate = SAMPLE_RATE
    torch.manual_seed(0)
    model = Vits.init_from_config(config)
    directory.mkdir(parents=True, exist_ok=True)
    model_path, config_path = directory / "model.pth", directory / "config.json"
    torch.save({"model": model.state_dict()}, model_path)
    config.save_json(str(config_path))
    return model_path, config_path


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> CoquiEngine:
    model_path, config_path = _tiny_vits(tmp_path_factory.mktemp("tiny-vits"))
    return CoquiEngine(model_path, config_path, device="cpu", threads=2)


@pytest.fixture(scope="module")
def multi_speaker(tmp_path_factory: pytest.TempPathFactory) -> CoquiEngine:
    model_path, config_path = _tiny_vits(tmp_path_factory.mktemp("tiny-vits-ms"),
                                         speakers=["alice", "bob"])
    return CoquiEngine(model_path, config_path, device="cpu", threads=2)


def test_loads_as_a_tts_engine(engine: CoquiEngine) -> None:
    assert isinstance(engine, TtsEngine)
    assert engine.name == "coqui" and engine.device == "cpu"
    assert torch.get_num_threads() == 2
    (voice,) = engine.voices()
    assert voice.sample_rate == SAMPLE_RATE and voice.engine == "coqui"


def test_synthesis_has_plausible_length(engine: CoquiEngine) -> None:
    text = "This is a short test sentence."
    chunk = engine.synthesize(text, SynthesisOptions(deterministic=True))
    assert chunk.sample_rate == SAMPLE_RATE and chunk.samples.dtype == np.float32
    assert np.isfinite(chunk.samples).all()
    # At least one hop per character and under a second per character, even untrained.
    assert len(text) * HOP <= chunk.samples.size <= len(text) * SAMPLE_RATE
    assert chunk.index == 0 and chunk.is_last


def test_streaming_yields_one_chunk_per_sentence(engine: CoquiEngine) -> None:
    chunks = list(engine.synthesize_stream(THREE_SENTENCES, SynthesisOptions()))
    assert [c.text for c in chunks] == ["Hello there.", "How are you today?",
                                        "The weather is fine."]
    assert [c.index for c in chunks] == [0, 1, 2]
    assert [c.is_last for c in chunks] == [False, False, True]
    assert all(c.samples.size > 0 for c in chunks)


def test_deterministic_mode_repeats_exactly(engine: CoquiEngine) -> None:
    options = SynthesisOptions(deterministic=True)
    first = engine.synthesize(THREE_SENTENCES, options).samples
    second = engine.synthesize(THREE_SENTENCES, options).samples
    np.testing.assert_array_equal(first, second)


def test_speed_changes_length_and_is_undone_after(engine: CoquiEngine) -> None:
    def length(speed: float) -> int:
        options = SynthesisOptions(speed=speed, deterministic=True)
        return engine.synthesize(THREE_SENTENCES, options).samples.size

    # An untrained duration predictor already gives most characters the one-frame minimum,
    # so speeding up cannot shorten much; slowing down must lengthen.
    assert length(2.0) <= length(1.0) < length(0.5) < length(0.25)
    # The request's settings must not leak into the shared model.
    assert engine._model.length_scale == 1.0  # noqa: SLF001


def test_multi_speaker_model_lists_speakers_as_voices(multi_speaker: CoquiEngine) -> None:
    assert [v.voice_id for v in multi_speaker.voices()] == ["alice", "bob"]
    chunk = multi_speaker.synthesize("Hi there.", SynthesisOptions(voice="bob"))
    assert chunk.samples.size > 0
    with pytest.raises(InvalidArgument) as err:
        multi_speaker.synthesize("Hi.", SynthesisOptions(voice="carol"))
    assert err.value.reason == "UNKNOWN_VOICE" and "alice" in err.value.message


def test_bad_input_is_refused(engine: CoquiEngine, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as err:
        engine.synthesize("   ", SynthesisOptions())
    assert err.value.reason == "EMPTY_TEXT"
    with pytest.raises(FailedPrecondition) as missing:
        CoquiEngine(tmp_path / "none.pth", tmp_path / "none.json", device="cpu")
    assert missing.value.reason == "MODEL_NOT_FOUND"
