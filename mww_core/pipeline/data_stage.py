"""The data stage: build the demo data set when configured, fingerprint the audio folder."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from mww_core import stages
from mww_core.config import FullConfig
from mww_core.stages import StageRecord, fingerprint

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def prepare_data(config: FullConfig, progress: Progress | None = None) -> StageRecord:
    """Build the demo data set when configured; check the data folder either way."""
    data = config.data
    started = time.time()
    built = False
    if data.build_demo:
        from mww_core.demo_data import build_demo_dataset, demo_fingerprint

        manifest = data.data_dir / "dataset.json"
        current = manifest.exists() and (
            json.loads(manifest.read_text()).get("fingerprint") == demo_fingerprint(data)
        )
        if not current and stages.is_dry_run():
            raise stages.WouldRun("data")
        build_demo_dataset(data, progress)
        built = not current
    missing = [
        str(data.data_dir / split / kind)
        for split in ("train", "validation", "test")
        for kind in ("positive", "ambient")
        if not (data.data_dir / split / kind).is_dir()
    ]
    if missing:
        raise FileNotFoundError(
            f"data folder {data.data_dir} lacks {', '.join(missing)}; lay out your audio as "
            "{train,validation,test}/{positive,negative,ambient}/*.wav (see README)"
        )
    listing = stages.file_listing(data.data_dir)
    return StageRecord(
        name="data",
        fingerprint=fingerprint(listing),
        outputs={"data_dir": str(data.data_dir)},
        metrics={"files": len(listing), "bytes": sum(size for _, size, _ in listing)},
        started=started,
        finished=time.time(),
        skipped=not built,
    )
