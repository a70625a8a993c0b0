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

from mww_core.config import load_config  # noqa: E402
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


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python flows/retrain_on_negatives.py [--config FILE] [--run-name NAME]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/demo.yaml", help="YAML config or preset")
    parser.add_argument("--run-name", default=None, help="Trained run folder name under runs/")
    args = parser.parse_args(argv)
    load_config(args.config)  # fail fast, before Prefect starts, on a bad config
    started = time.time()
    summary = retrain_on_new_negatives(config=args.config, run_name=args.run_name)
    summary["seconds"] = round(time.time() - started, 1)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
