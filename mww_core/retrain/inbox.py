"""The negatives inbox: which clips are new, the retraining state, the new clips' stream."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mww_core.config import FullConfig
from mww_core.stages import fingerprint

log = logging.getLogger(__name__)

STATE = "state.json"

# The joined stream of a round's new clips (its source name in the stored streams).
INBOX_SOURCE = "inbox"


@dataclass
class InboxScan:
    """What a scan of the negatives inbox found: the new clips and the round they start."""

    inbox_dir: str
    fingerprint: str  # of every clip in the inbox (content hashes)
    new_files: dict[str, str]  # path relative to the inbox -> sha256 of its content
    total_files: int
    round: int
    round_dir: str
    seconds: float

    def to_dict(self) -> dict:
        """Plain dict (JSON-serializable)."""
        return asdict(self)


def retrain_dir(config: FullConfig) -> Path:
    """Folder of a run's retraining state, model versions and rounds."""
    return config.run_dir / "retrain"


def round_config(config: FullConfig, number: int) -> FullConfig:
    """The config whose run folder is round ``number`` (so pipeline stages write there)."""
    return config.model_copy(
        update={"runs_dir": retrain_dir(config) / "rounds", "run_name": f"round-{number:04d}"}
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_state(config: FullConfig) -> dict:
    """Processed inbox clips (by content hash) and a summary of every round so far."""
    path = retrain_dir(config) / STATE
    if not path.exists():
        return {"processed": {}, "rounds": []}
    return json.loads(path.read_text())


def scan_inbox(config: FullConfig) -> InboxScan:
    """Hash every clip in the inbox; clips whose content was processed before are not new."""
    from mww_core.audio import list_audio_files

    started = time.time()
    inbox = config.retrain.inbox_dir
    if not inbox.is_dir():
        raise FileNotFoundError(
            f"{inbox}: negatives inbox folder not found; create it and drop new negative clips "
            "(wav/flac) there, or point retrain.inbox_dir at your folder"
        )
    hashes = {p.relative_to(inbox).as_posix(): _sha256(p) for p in list_audio_files(inbox)}
    state = load_state(config)
    seen = set(state["processed"].values())
    number = len(state["rounds"]) + 1
    return InboxScan(
        inbox_dir=str(inbox),
        fingerprint=fingerprint(sorted(hashes.values())),
        new_files={rel: h for rel, h in hashes.items() if h not in seen},
        total_files=len(hashes),
        round=number,
        round_dir=str(round_config(config, number).run_dir),
        seconds=time.time() - started,
    )


def inbox_stream(config: FullConfig, paths: list[Path]):
    """The new clips joined by gaps into one negative feature stream, as the device hears them.

    Returns:
        The stream and the clips in it (unreadable clips are skipped with a warning).
    """
    from mww_core.audio import AudioError, load_audio
    from mww_core.evaluation import stream_clips
    from mww_core.frontend import compute_features
    from mww_core.store import Stream

    clips, kept = [], []
    for path in paths:
        try:
            clips.append(load_audio(path))
            kept.append(path)
        except AudioError as exc:
            log.warning("inbox clip skipped: %s", exc)
    if not clips:
        raise ValueError(f"none of the {len(paths)} new inbox clips could be read (see warnings)")
    audio, spans = stream_clips(clips, config.features.stream_gap_s, seed=config.augmentation.seed)
    return Stream(compute_features(audio), INBOX_SOURCE, "negative", list(spans)), kept
