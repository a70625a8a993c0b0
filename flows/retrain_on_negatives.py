"""Retrain when new negative audio arrives: mine, fine-tune, evaluate, promote if no regression."""

from __future__ import annotations

import argparse
import json
import os
import time

# mww_core logs (mining counts, validation metrics) go to the Prefect run log; TF stays quiet.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "mww_core")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from prefect import flow  # noqa: E402

from mww_core import retrain  # noqa: E402
from mww_core.config import ConfigError  # noqa: E402
from mww_core.lock import run_lock  # noqa: E402
from tasks import stages  # noqa: E402


@flow(name="retrain-on-new-negatives")
def retrain_on_new_negatives(
    config: str = "configs/demo.yaml", run_name: str | None = None
) -> dict:
    """Look for new clips in the negatives inbox; when there are some, run one retraining round.

    The round mines the windows of the new clips that the current model falsely accepts,
    fine-tunes from the current weights, evaluates and exports the candidate, and promotes it
    to a new model version only if test recall and FAH stay within the configured tolerances.
    """
    cfg = stages.stage_config(config, run_name)
    with run_lock(cfg.run_dir):  # never retrain while train-wakeword writes the same run
        scan = stages.scan_negatives_inbox(config, run_name)
        if not scan["new_files"]:
            return {"round": None, "new_files": [], "reason": "no new negative clips"}
        inbox = stages.inbox_features(config, run_name, scan)
        mined = stages.mine_inbox_hard_negatives(config, run_name, scan, inbox)
        if mined["metrics"]["kept"] == 0:
            reason = "kept the current model: it accepts none of the new clips, nothing to learn"
            return stages.promote_or_keep(config, run_name, scan, None, reason)
        tuned = stages.fine_tune(config, run_name, scan, mined)
        result = stages.evaluate_candidate(config, run_name, scan, tuned, inbox)
        return stages.promote_or_keep(config, run_name, scan, result)


def main(argv: list[str] | None = None) -> dict:
    """Command line: ``python flows/retrain_on_negatives.py [--config FILE] [--run-name NAME]``.

    Prints the round's summary as JSON and returns it.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/demo.yaml", help="YAML config or preset")
    parser.add_argument("--run-name", default=None, help="Trained run folder name under runs/")
    parser.add_argument(
        "--always-run-flow",
        action="store_true",
        help="start a Prefect flow run even when the inbox has no new clips",
    )
    args = parser.parse_args(argv)
    started = time.time()
    try:
        cfg = stages.stage_config(args.config, args.run_name)  # fails fast, before Prefect
        scan = None if args.always_run_flow else retrain.scan_inbox(cfg)
    except (ConfigError, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if scan is not None and not scan.new_files and retrain.has_current_version(cfg):
        # Nothing new: skip starting Prefect (its start-up is most of a no-op run's time).
        current = retrain.current_version(cfg)
        summary = {"round": None, "new_files": [], "reason": "no new negative clips"}
        summary.update(version=current["version"], tflite=current["tflite"])
        print(f"{scan.total_files} clips in {scan.inbox_dir}, none new; model {current['version']}")
    else:
        summary = retrain_on_new_negatives(config=args.config, run_name=args.run_name)
    summary["seconds"] = round(time.time() - started, 2)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
