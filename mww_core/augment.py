"""Waveform augmentation with audiomentations, seeded per clip; always before the frontend."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import audiomentations as am
import numpy as np

from mww_core.config import AugmentationConfig
from mww_core.frontend import SAMPLE_RATE_HZ

log = logging.getLogger(__name__)


class AudioAugmentationPipeline:
    """microWakeWord's transforms, each with its probability from the config.

    Room impulse responses and background noise come from folders of audio (skipped when the
    folder is missing or empty). ``augment(waveform, seed)`` gives the same output for the same
    seed, whichever process runs it.
    """

    def __init__(
        self, config: AugmentationConfig, rir_dir: Path | None, noise_dir: Path | None
    ) -> None:
        self.config = config
        transforms: list = []
        if rir_dir is not None and _has_audio(rir_dir):
            transforms.append(
                am.ApplyImpulseResponse(
                    ir_path=str(rir_dir), p=config.rir_probability, leave_length_unchanged=True
                )
            )
        if noise_dir is not None and _has_audio(noise_dir):
            low, high = config.background_snr_db
            transforms.append(
                am.AddBackgroundNoise(
                    sounds_path=str(noise_dir),
                    min_snr_db=low,
                    max_snr_db=high,
                    p=config.background_noise_probability,
                )
            )
        transforms += [
            am.AddColorNoise(min_snr_db=10.0, max_snr_db=40.0, p=config.colored_noise_probability),
            am.SevenBandParametricEQ(
                min_gain_db=-6.0, max_gain_db=6.0, p=config.seven_band_eq_probability
            ),
            am.TanhDistortion(
                min_distortion=0.05, max_distortion=0.4, p=config.tanh_distortion_probability
            ),
            am.PitchShift(min_semitones=-2.0, max_semitones=2.0, p=config.pitch_shift_probability),
            am.BandStopFilter(p=config.band_stop_probability),
            am.Gain(
                min_gain_db=config.gain_db[0],
                max_gain_db=config.gain_db[1],
                p=config.gain_probability,
            ),
        ]
        self.compose = am.Compose(transforms)

    def augment(self, waveform: np.ndarray, seed: int) -> np.ndarray:
        """Augmented copy of a 16 kHz float waveform, reproducible from ``seed``."""
        # audiomentations draws from the global `random` and `np.random` generators.
        random.seed(seed)
        np.random.seed(seed % (2**32))
        out = self.compose(samples=waveform.astype(np.float32), sample_rate=SAMPLE_RATE_HZ)
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    __call__ = augment


def _has_audio(folder: Path) -> bool:
    return folder.is_dir() and any(
        p.suffix.lower() in {".wav", ".flac", ".ogg", ".mp3"} for p in folder.iterdir()
    )
