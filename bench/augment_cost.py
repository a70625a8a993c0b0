"""Milliseconds of waveform augmentation per 1.5 s window, per transform and all together.

Usage: ``python -m bench.augment_cost [--data data/demo] [--clips 40]``

Augments ``--clips`` vowel-like 1.5 s windows (a pulse train through three formant resonators,
placed as the features stage places a positive) in this process, one core. Room impulse
responses and noise come from ``--data``'s ``rirs/`` and ``noise/`` folders when they exist,
else a few are generated in a temporary folder. Rows: the defaults (the eight audiomentations
transforms at their default probabilities); each transform added by issue 15 alone at
probability 1 (nothing else on); the README's generalization recipe; and everything at
probability 1. The first window of each row is not timed (imports, numba and Praat start-up).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.signal

from mww_core.audio import write_wav
from mww_core.augment import AudioAugmentationPipeline
from mww_core.config import AugmentationConfig
from mww_core.features import place_clip

SR = 16000
OFF = {
    "rir_probability": 0.0,
    "background_noise_probability": 0.0,
    "colored_noise_probability": 0.0,
    "gain_probability": 0.0,
    "seven_band_eq_probability": 0.0,
    "tanh_distortion_probability": 0.0,
    "pitch_shift_probability": 0.0,
    "band_stop_probability": 0.0,
}
NEW = ["speed", "formant_warp", "vocoder", "mic_band", "loudness", "clipping"]
RECIPE = {  # README "Augmentation": the generalization recipe
    "speed_probability": 0.5,
    "formant_warp_probability": 0.3,
    "pitch_shift_probability": 0.3,
    "pitch_shift_semitones": (-3.0, 3.0),
    "mic_band_probability": 0.3,
    "background_noise_probability": 0.8,
    "background_snr_db": (0.0, 25.0),
    "colored_noise_probability": 0.3,
    "colored_noise_snr_db": (0.0, 25.0),
    "loudness_probability": 0.7,
    "clipping_probability": 0.05,
}


def vowel_window(f0: float, seconds: float = 0.8) -> np.ndarray:
    """A vowel-like clip at ``f0`` Hz placed 0.2 s before the end of a 1.5 s window."""
    x = np.zeros(int(seconds * SR))
    x[:: int(SR / f0)] = 1.0
    for hz in (700.0, 1200.0, 2600.0):
        r, theta = np.exp(-np.pi * 80 / SR), 2 * np.pi * hz / SR
        x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)
    return place_clip((0.5 * x / np.abs(x).max()).astype(np.float32), int(1.5 * SR), SR // 5)


def room_folders(data: Path | None, tmp: Path) -> tuple[Path, Path]:
    """``rirs/`` and ``noise/`` of ``data`` when both exist, else generated under ``tmp``."""
    if data is not None and (data / "rirs").is_dir() and (data / "noise").is_dir():
        return data / "rirs", data / "noise"
    rng = np.random.default_rng(0)
    for i in range(4):
        rir = np.exp(-np.arange(4000) / rng.uniform(300, 1500)) * rng.standard_normal(4000)
        write_wav(tmp / "rirs" / f"rir_{i}.wav", (rir / np.abs(rir).max()).astype(np.float32))
        noise = (0.2 * rng.standard_normal(3 * SR)).astype(np.float32)
        write_wav(tmp / "noise" / f"noise_{i}.wav", noise)
    return tmp / "rirs", tmp / "noise"


def ms_per_window(fields: dict, folders: tuple[Path, Path], windows: list[np.ndarray]) -> float:
    """Mean milliseconds of ``augment`` per window with ``fields`` set."""
    pipeline = AudioAugmentationPipeline(AugmentationConfig(**fields), *folders)
    pipeline.augment(windows[0], 0)  # start-up, not timed
    start = time.perf_counter()
    for i, window in enumerate(windows):
        pipeline.augment(window, i + 1)
    return 1000 * (time.perf_counter() - start) / len(windows)


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder with rirs/ and noise/")
    parser.add_argument("--clips", type=int, default=40, help="windows timed per row")
    args = parser.parse_args(argv)
    windows = [vowel_window(90 + 10 * (i % 20)) for i in range(args.clips)]
    rows = {"defaults": {}}
    rows |= {f"{name} alone": {**OFF, f"{name}_probability": 1.0} for name in NEW}
    rows["generalization recipe"] = RECIPE
    every = {name: 1.0 for name in OFF} | {f"{name}_probability": 1.0 for name in NEW}
    rows["everything at p=1"] = every | {"clipping_probability": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        folders = room_folders(args.data, Path(tmp))
        print(f"{args.clips} windows of 1.5 s, one process; room audio from {folders[0].parent}")
        print(f"  load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for name, fields in rows.items():
            print(f"  {name:<24} {ms_per_window(fields, folders, windows):7.1f} ms/window")
        print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
