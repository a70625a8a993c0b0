"""Tests for mww_core.audio: loading, resampling, validation, atomic writes, listings."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mww_core.audio import AudioError, list_audio_files, load_audio, write_wav


def _tone(sample_rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(sample_rate * seconds))) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 44100, 48000])
def test_resamples_to_16k_with_the_right_length(tmp_path, sample_rate):
    path = tmp_path / f"tone_{sample_rate}.wav"
    sf.write(path, _tone(sample_rate, 0.5), sample_rate, subtype="PCM_16")
    audio = load_audio(path)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert len(audio) == 8000
    assert 0.4 < np.abs(audio).max() <= 1.0
    # The tone survives resampling: its energy sits at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 5


def test_stereo_is_downmixed_by_mean(tmp_path):
    left = np.full(1600, 0.5, dtype=np.float32)
    right = np.full(1600, -0.25, dtype=np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    audio = load_audio(path)
    np.testing.assert_allclose(audio, 0.125, atol=1e-6)


def test_reads_24_bit_and_flac(tmp_path):
    tone = _tone(16000, 0.25)
    wav24 = tmp_path / "deep.wav"
    sf.write(wav24, tone, 16000, subtype="PCM_24")
    flac = tmp_path / "tone.FLAC"
    sf.write(flac, tone, 16000, format="FLAC", subtype="PCM_16")
    np.testing.assert_allclose(load_audio(wav24), tone, atol=1e-6)
    np.testing.assert_allclose(load_audio(flac), tone, atol=1e-4)


@pytest.mark.parametrize(
    "problem", ["missing", "directory", "empty", "corrupt", "nan", "no_frames"]
)
def test_bad_files_raise_audio_error_naming_the_path(tmp_path, problem):
    path = tmp_path / "x.wav"
    if problem == "directory":
        path.mkdir()
    elif problem == "empty":
        path.write_bytes(b"")
    elif problem == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio at all" * 4)
    elif problem == "nan":
        samples = np.zeros(160, dtype=np.float32)
        samples[10] = np.nan
        sf.write(path, samples, 16000, subtype="FLOAT")
    elif problem == "no_frames":
        sf.write(path, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_reads_mp3_when_libsndfile_can(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} has no MP3 support")
    path = tmp_path / "tone.mp3"
    sf.write(path, _tone(44100, 1.0), 44100, format="MP3", subtype="MPEG_LAYER_III")
    audio = load_audio(path)
    assert abs(len(audio) - 16000) < 1600  # MP3 adds encoder padding
    assert np.abs(audio).max() > 0.3


def test_write_wav_is_16_bit_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "out" / "clip.wav"
    samples = np.linspace(-1.2, 1.2, 1600).astype(np.float32)  # out of range: clipped
    write_wav(path, samples)
    write_wav(path, samples[::-1].copy())  # overwrite in place
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 1600)
    assert [p.name for p in path.parent.iterdir()] == ["clip.wav"]
    read, _ = sf.read(path, dtype="int16")
    assert read[0] == 32767 and read[-1] == -32767


def test_write_wav_failure_leaves_nothing_behind(tmp_path):
    with pytest.raises(AudioError):
        write_wav(tmp_path / "bad.wav", np.array([0.0, np.inf]))
    with pytest.raises(AudioError):
        write_wav(tmp_path / "bad.wav", np.zeros((10, 2)))
    assert list(tmp_path.iterdir()) == []


def test_list_audio_files_is_sorted_recursive_and_case_insensitive(tmp_path):
    names = ["b.wav", "a.FLAC", "sub/c.ogg", "sub/deeper/d.Mp3", "notes.txt", "e.wav.tmp"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.wav").mkdir()
    found = [p.relative_to(tmp_path).as_posix() for p in list_audio_files(tmp_path)]
    assert found == ["a.FLAC", "b.wav", "sub/c.ogg", "sub/deeper/d.Mp3"]
    with pytest.raises(AudioError):
        list_audio_files(tmp_path / "missing")
