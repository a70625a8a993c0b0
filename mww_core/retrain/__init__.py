"""Retraining on new negative audio: inbox scan, mining, fine-tuning and gated promotion.

``inbox`` (new clips, state, round folders), ``versions`` (model versions), ``rounds`` (a
round's steps and ``run_round``) and ``promotion`` (the gate, the round's summary and report).
"""

from mww_core.retrain.inbox import (
    INBOX_SOURCE,
    STATE,
    InboxScan,
    inbox_stream,
    load_state,
    retrain_dir,
    round_config,
    scan_inbox,
)
from mww_core.retrain.promotion import decide_promotion, finish_round, round_report
from mww_core.retrain.rounds import (
    evaluate_candidate,
    fine_tune_config,
    inbox_false_accepts,
    rehearsal_data,
    run_fine_tune,
    run_inbox_features,
    run_inbox_mining,
    run_round,
    shipped_phase,
    training_shards,
)
from mww_core.retrain.versions import (
    CURRENT,
    accepted_clips,
    build_current_model,
    current_version,
    has_current_version,
    load_record,
    write_version,
)

__all__ = [
    "CURRENT",
    "INBOX_SOURCE",
    "STATE",
    "InboxScan",
    "accepted_clips",
    "build_current_model",
    "current_version",
    "decide_promotion",
    "evaluate_candidate",
    "fine_tune_config",
    "finish_round",
    "has_current_version",
    "inbox_false_accepts",
    "inbox_stream",
    "load_record",
    "load_state",
    "rehearsal_data",
    "retrain_dir",
    "round_config",
    "round_report",
    "run_fine_tune",
    "run_inbox_features",
    "run_inbox_mining",
    "run_round",
    "scan_inbox",
    "shipped_phase",
    "training_shards",
    "write_version",
]
