"""Learning curves of a trained run on its test split: every validated step scored again.

    python -m bench.learning_curves [--config configs/demo.yaml] [--split test]
        [--max-fah 1.0] [--json]

Training keeps the weights of every step it validated (``train_phase_<n>/validated/``). This
scores each of them on the run's test split, the way validation scores (the float model,
fired with the device's default settings), and prints a row per step: validation's recall at
its cutoff (``*`` where that step was the phase's best when validated), the test's recall at
that cutoff and its best recall within ``--max-fah`` and training's near-miss limit. On the
demo data set the test holds voices, settings and engines training never used, so this is how
the recipe's length is chosen: train longer than the recipe (``training.phases[*].steps``)
once, and see where more steps stop finding more of what training never heard. It chooses
nothing in the run: its best step and cutoff stay validation's.

The run is the config's (``runs_dir``/``run_name``), trained with this version (older runs
kept no validated weights: train them again).
"""

from __future__ import annotations

import argparse
import json
import logging

from rich.console import Console

from bench.generalization import format_curves
from mww_core.cli import RichProgress, print_error, progress_bars
from mww_core.config import load_config
from mww_core.pipeline.curves import run_curves


def main(argv: list[str] | None = None) -> int:
    """Print the run's learning curves on ``--split``; 1 with a message on a missing run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--split", default="test", help="validation or test (default)")
    parser.add_argument("--max-fah", type=float, default=1.0, help="FAH bound of the matched point")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    config = load_config(args.config)
    try:
        with progress_bars(Console(stderr=True)) as bars:  # stdout: the figures
            curves = run_curves(config, args.split, args.max_fah, RichProgress(bars))
    except (FileNotFoundError, ValueError) as exc:
        print_error(exc)
        return 1
    result = {"direction": config.run_name, "seed": config.training.seed, "curves": curves}
    if not args.json:
        print(format_curves([result], args.max_fah, f"{args.split}'s"))
    print(json.dumps({"run": str(config.run_dir), "split": args.split, "curves": curves}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
