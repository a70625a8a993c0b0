"""The full pipeline as a Prefect flow: data, features, phase 1, mining, phase 2, eval, export."""

from __future__ import annotations

import argparse
import json
import os
import time

# mww_core logs (validation metrics, mining counts) go to the Prefect run log; TF stays quiet.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "mww_core")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The temporary API server Prefect starts for a local run gets 20 s by default: too little on a
# busy 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# The temporary server's telemetry would try the internet, which a training machine (and this
# project's offline promise) need not reach: an ERROR line in every local run otherwise.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow  # noqa: E402

from mww_core import pipeline  # noqa: E402
from mww_core.config import ConfigError, FullConfig  # noqa: E402
from mww_core.lock import run_lock  # noqa: E402
from tasks import feature_fanout, stages  # noqa: E402


@flow(name="train-wakeword")
def train_wakeword(config: str = "configs/demo.yaml", run_name: str | None = None) -> dict:
    """Train a wake-word model end to end; stages whose inputs are unchanged are skipped."""
    cfg = stages.stage_config(config, run_name)
    with run_lock(cfg.run_dir):  # a second flow on the same run folder fails fast
        return _run_stages(config, run_name, cfg)


def _run_stages(config: str, run_name: str | None, cfg: FullConfig) -> dict:
    """The stage graph's stages in order, each a Prefect task (reused when up to date)."""
    records: dict[str, dict] = {}
    for stage in pipeline.stage_graph(cfg):
        if stage.name == "features" and cfg.performance.task_runner != "threads":
            # Shards fan out over Dask as a subflow; the features task then finds them in the store.
            feature_fanout.fan_out_shards(cfg)
        inputs = {name: records[name] for name in stage.inputs}
        records[stage.name] = stages.stage_task(stage)(config, run_name, stage.name, inputs)
    return summarize(cfg, records)


def summarize(cfg: FullConfig, records: dict[str, dict]) -> dict:
    """What a run produced: model, manifest, test figures, and which stages were skipped."""
    evaluated, exported = records["evaluate"], records["export"]
    return {
        "run_dir": str(cfg.run_dir),
        "model": exported["outputs"]["tflite"],
        "manifest": exported["outputs"]["manifest"],
        "test": evaluated["metrics"]["test"],
        "cutoff": evaluated["metrics"]["cutoff"],
        "export": exported["metrics"],
        "skipped": [name for name, r in records.items() if r.get("skipped")],
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python flows/train_wakeword.py [--config FILE] [--run-name NAME]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--config",
        default="configs/demo.yaml",
        help="YAML config or preset name (demo, offline, full)",
    )
    parser.add_argument("--run-name", default=None, help="Run folder name under runs/")
    parser.add_argument(
        "--always-run-flow",
        action="store_true",
        help="start a Prefect flow run even when every stage is up to date",
    )
    args = parser.parse_args(argv)
    started = time.time()
    try:
        cfg = stages.stage_config(args.config, args.run_name)  # fails fast, before Prefect
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    current = None if args.always_run_flow else pipeline.up_to_date(cfg)
    if current is not None:
        # Nothing to do: skip starting Prefect's temporary server (most of a no-op run's time).
        records = {name: {**r.to_dict(), "skipped": True} for name, r in current.items()}
        summary = summarize(cfg, records)
        print("every stage is up to date; nothing to run (--always-run-flow to record a run)")
    else:
        summary = train_wakeword(config=args.config, run_name=args.run_name)
    summary["seconds"] = round(time.time() - started, 1)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
