"""Reading, validating, resampling and writing audio as 16 kHz mono float32."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
_CONVERT_HINT = "convert it with `sox IN -r 16000 -c 1 -b 16 OUT.wav` (or ffmpeg -ar 16000 -ac 1)"


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file, the problem and the fix."""


def load_audio(path: str | Path) -> np.ndarray:
    """Read an audio file as float32 mono 16 kHz samples in [-1, 1].

    Channels are averaged; any other sample rate is resampled with a polyphase filter.

    Args:
        path: A wav, flac, ogg or mp3 file.

    Returns:
        A 1-D float32 array at 16 kHz.

    Raises:
        AudioError: The file is missing, a directory, empty, unreadable, or holds NaN/inf.
    """
    path = Path(path)
    _check_is_readable_file(path)
    try:
        samples, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        if path.suffix.lower() == ".mp3":
            raise AudioError(
                f"{path}: cannot decode MP3 with libsndfile {sf.__libsndfile_version__} "
                f"({exc}); MP3 needs libsndfile >= 1.1, or {_CONVERT_HINT}"
            ) from exc
        raise AudioError(
            f"{path}: unreadable or corrupt audio ({exc}); re-export the file or {_CONVERT_HINT}"
        ) from exc
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: contains no audio samples; delete it or re-record it")
    if not np.all(np.isfinite(samples)):
        raise AudioError(
            f"{path}: contains NaN or infinite samples; re-export it as 16-bit PCM WAV"
        )
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if sample_rate != SAMPLE_RATE_HZ:
        logger.debug("Resampling %s from %d Hz to %d Hz", path, sample_rate, SAMPLE_RATE_HZ)
        mono = resample_to_16k(mono, sample_rate)
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)


def speech_rms(audio: np.ndarray) -> float:
    """RMS of the 10 ms frames within 30 dB of the loudest: the speech, not the pauses."""
    frame = SAMPLE_RATE_HZ // 100
    n = max(len(audio) // frame, 1)
    energy = (np.resize(audio.astype(np.float64), n * frame).reshape(n, frame) ** 2).mean(axis=1)
    loud = energy[energy >= energy.max() * 1e-3]
    return float(np.sqrt(loud.mean())) if loud.size else 0.0


def resample_to_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resample 1-D audio from ``sample_rate`` to 16 kHz (polyphase, gcd-reduced ratio).

    Args:
        samples: 1-D audio.
        sample_rate: Its sample rate in Hz.

    Returns:
        float32 samples at 16 kHz, ``ceil(len * 16000 / sample_rate)`` of them.
    """
    if sample_rate == SAMPLE_RATE_HZ:
        return np.asarray(samples, dtype=np.float32)
    g = math.gcd(int(sample_rate), SAMPLE_RATE_HZ)
    out = resample_poly(samples, SAMPLE_RATE_HZ // g, int(sample_rate) // g)
    return out.astype(np.float32, copy=False)


def _check_is_readable_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found; check the path or remove it from the list")
    if path.is_dir():
        raise AudioError(
            f"{path}: is a directory, not an audio file; rename it or point at the files inside"
        )
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes); delete it or record it again")


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE_HZ) -> None:
    """Write mono audio as a 16-bit PCM WAV, atomically (temporary name, then rename).

    Args:
        path: Destination file; its folder is created if missing.
        samples: 1-D float audio in [-1, 1]; values outside are clipped.
        sample_rate: Sample rate in Hz.

    Raises:
        AudioError: The samples are not 1-D or hold NaN/inf.
    """
    path = Path(path)
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise AudioError(f"{path}: expected 1-D mono samples, got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{path}: refusing to write NaN or infinite samples; check the source")
    pcm = np.round(np.clip(samples.astype(np.float64), -1.0, 1.0) * 32767.0).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            sf.write(handle, pcm, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def list_audio_files(folder: str | Path) -> list[Path]:
    """List the audio files (wav, flac, ogg, mp3; any case) under ``folder``, recursively.

    Args:
        folder: Folder to search.

    Returns:
        The files, sorted by path.

    Raises:
        AudioError: ``folder`` does not exist or is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(f"{folder}: not a folder of audio files; check the data_dir setting")
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
    )
