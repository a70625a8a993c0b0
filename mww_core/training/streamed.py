"""Training batches sampled from the store's row groups as training goes, in bounded memory.

``StreamedTrainingData`` draws every batch by ``TrainingData``'s rules (``batch_plan``,
``finish_batch``) from shards it never loads whole. It keeps two bytes per row (label and
weight class, ``ShardIndex``) and, per class of rows (positive, negative, hard negative, focus):

- a class with at most ``pool_windows`` rows is held in memory whole (positives and mined or
  focus windows usually are), and drawn from exactly as ``TrainingData`` draws it;
- a larger class is streamed: its pool is a window of ``W`` of its row groups (about
  ``pool_windows`` rows) that slides one row group every ``K`` steps along a seeded order of
  the class's row groups (a new permutation each pass, so every row group comes round once a
  pass). ``K`` is set so that each row read into the pool is drawn about ``draws_per_window``
  times before it leaves. The row groups ahead are decoded in background threads.

A draw from a set of classes first picks, like ``rng.choice`` over all of their rows, whether
each row comes from a held class (and which row) or from a streamed one; rows of a streamed
class are then drawn uniformly from its current pool. So every class keeps its share of every
batch, and when every class is held whole the batches equal ``TrainingData``'s bit for bit.
The pool at step ``s`` is a function of (seed, phase, ``s // K``): a batch is still a pure
function of (seed, phase, step), and a resumed phase needs only its step.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mww_core.config import PhaseConfig
from mww_core.frontend import NUM_CHANNELS
from mww_core.store import WEIGHT_CLASSES, ShardIndex, _cores
from mww_core.training.batches import Batch, batch_plan, finish_batch

log = logging.getLogger(__name__)

CLASSES = (*WEIGHT_CLASSES, "focus")
FOCUS = CLASSES.index("focus")
# The sets a batch draws from (``batch_plan``), as classes.
BUCKETS = {
    "positive": (0,),
    "negative": (1,),
    "hard_negative": (2,),
    "any_negative": (1, 2),
    "focus": (FOCUS,),
}
_KIND_NAMES = np.array(WEIGHT_CLASSES, dtype=object)
_POOL_SEED_TAG = 0x5EED  # keeps pool orders apart from the batch generators' seeds
ROW_GROUPS_AHEAD = 2  # row groups decoded ahead of each streamed pool


@dataclass
class _Rows:
    """Rows held in memory: features ``[n, frames, 40]`` uint16, labels, weight classes and
    their row numbers in the store."""

    features: np.ndarray
    label: np.ndarray
    kind: np.ndarray
    row: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


class _Pool:
    """One streamed class's rows in memory: a window of its row groups that slides with steps."""

    def __init__(self, data: StreamedTrainingData, cls: int, phase_index: int, slide_steps: int):
        self.data, self.cls, self.slide_steps = data, cls, slide_steps
        self.groups = data._class_groups[cls]
        most = np.bincount(data._row_group[data._row_class == cls]).max()  # rows in a row group
        self.window = max(1, data.pool_windows // int(most))
        self._phase_index = phase_index
        self._orders: dict[int, np.ndarray] = {}
        self._decoded: dict[int, Future] = {}
        self._at: int | None = None
        self._blocks: list[_Rows] = []
        self._ends = np.zeros(1, np.int64)

    def _group(self, position: int) -> int:
        """The row group at ``position`` of the class's seeded order (a new pass every G)."""
        count = len(self.groups)
        lap = position // count
        if lap not in self._orders:
            seed = [self.data.seed, self._phase_index, _POOL_SEED_TAG, self.cls, lap]
            self._orders = {k: v for k, v in self._orders.items() if k >= lap - 1}
            self._orders[lap] = np.random.default_rng(seed).permutation(count)
        return int(self.groups[self._orders[lap][position % count]])

    def at(self, step: int) -> _Pool:
        """Move the window to where it is at ``step``; decode what it lacks and what comes next."""
        start = step // self.slide_steps
        if start == self._at:
            return self
        wanted = list(dict.fromkeys(self._group(p) for p in range(start, start + self.window)))
        end = start + self.window
        ahead = [self._group(p) for p in range(end, end + ROW_GROUPS_AHEAD)]
        for group in wanted + ahead:
            if group not in self._decoded:
                self._decoded[group] = self.data._decode(group, self.cls)
        keep = set(wanted) | set(ahead)
        self._decoded = {g: f for g, f in self._decoded.items() if g in keep}
        self._blocks = [self._decoded[g].result() for g in wanted]
        self._ends = np.cumsum([0] + [len(b) for b in self._blocks])
        self._at = start
        return self

    def draw(self, rng: np.random.Generator, count: int) -> tuple[list[_Rows], np.ndarray]:
        """``count`` rows drawn uniformly from the pool: its blocks, and (block, row) per draw."""
        picks = rng.integers(0, self._ends[-1], count)
        block = np.searchsorted(self._ends, picks, side="right") - 1
        return self._blocks, np.stack([block, picks - self._ends[block]], axis=1)


class StreamedTrainingData:
    """Training batches drawn from Parquet shards (local paths or fsspec URLs) in bounded memory.

    ``batch(phase, step, batch_size, phase_config)`` is a pure function of its arguments and
    the seed, as ``TrainingData.batch`` is (see the module docstring for how).

    Args:
        paths: Training shards, in store order.
        input_frames: The model's input length (windows are cropped to it).
        seed: The training seed.
        focus_paths: Shards whose rows are the focus set (a retraining round's new windows).
        focus_fraction: Share of every batch drawn from the focus rows.
        focus_weight: Loss weight of focus rows.
        pool_windows: Rows of one class held in memory (a class this size or smaller is held
            whole; larger ones stream through a pool of about this many rows).
        draws_per_window: About how many times a streamed row is drawn while in its pool.
        engine_prefixes: With these, every batch carries a fourth array: each row's engine
            (``mww_core.store.engine_codes``, -1 for none), for domain-adversarial training.
    """

    def __init__(
        self,
        paths: list,
        input_frames: int,
        seed: int,
        focus_paths: list | tuple = (),
        focus_fraction: float = 0.0,
        focus_weight: float = 1.0,
        pool_windows: int = 8192,
        draws_per_window: float = 1.0,
        engine_prefixes: tuple[str, ...] | list[str] = (),
    ):
        if pool_windows < 1 or draws_per_window <= 0:
            raise ValueError(
                f"pool_windows ({pool_windows}) must be >= 1 and draws_per_window "
                f"({draws_per_window}) above 0"
            )
        self.index = ShardIndex.build([*paths, *focus_paths], engine_prefixes)
        self.input_frames, self.seed = input_frames, seed
        self.focus_fraction, self.focus_weight = focus_fraction, focus_weight
        self.pool_windows, self.draws_per_window = pool_windows, draws_per_window
        if self.index.frames < input_frames:
            raise ValueError(
                f"{self.index.paths[0]}: windows of {self.index.frames} frames are shorter than "
                f"the model's input ({input_frames}); raise features.window_frames"
            )
        index = self.index
        focus_start = index.group_start[np.sum(index.group_file < len(paths))]
        self._row_class = index.kind.copy()
        self._row_class[focus_start:] = FOCUS
        self._row_group = np.repeat(
            np.arange(index.groups, dtype=np.int32), np.diff(index.group_start)
        )
        self.sizes = np.bincount(self._row_class, minlength=len(CLASSES)).astype(np.int64)
        if self.sizes[0] == 0 or self.sizes[1] + self.sizes[2] == 0:
            raise ValueError(
                f"training needs positive and negative windows; the {len(paths)} shards "
                f"(first: {paths[0] if paths else None}) hold {self.sizes[0]} positive and "
                f"{self.sizes[1] + self.sizes[2]} negative"
            )
        self.held = tuple(c for c in range(len(CLASSES)) if 0 < self.sizes[c] <= pool_windows)
        self.streamed = tuple(c for c in range(len(CLASSES)) if self.sizes[c] > pool_windows)
        self._class_groups = {
            c: np.unique(self._row_group[self._row_class == c]) for c in self.streamed
        }
        self._offsets = np.arange(input_frames)[None, :]
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pools: dict[tuple, _Pool] = {}
        self._held = self._load_held()
        self._held_positions: dict[tuple[int, ...], np.ndarray] = {}
        log.info("%s", self.describe())

    # ---- what is where -------------------------------------------------------------------

    def describe(self) -> str:
        """Rows per class and which classes are held whole or streamed."""
        mib = self.index.frames * NUM_CHANNELS * 2 / 2**20
        parts = [
            f"{CLASSES[c]} {self.sizes[c]:,} ({'held' if c in self.held else 'streamed'})"
            for c in range(len(CLASSES))
            if self.sizes[c]
        ]
        held = len(self._held) if hasattr(self, "_held") else 0
        pools = (
            f", streamed classes through pools of about {self.pool_windows:,} windows "
            f"({self.pool_windows * mib:,.0f} MiB) each"
            if self.streamed
            else ""
        )
        return (
            f"training store: {len(self.index):,} windows in {self.index.groups} row groups: "
            f"{', '.join(parts)}; {held:,} held in memory ({held * mib:,.0f} MiB){pools}"
        )

    @property
    def focus_rows(self) -> int:
        """Number of focus rows."""
        return int(self.sizes[FOCUS])

    def __len__(self) -> int:
        return len(self.index)

    # ---- reading -------------------------------------------------------------------------

    def _load_held(self) -> _Rows:
        """Every row of the held classes, in store order (one row group decoded at a time)."""
        mask = np.isin(self._row_class, self.held)
        self._held_rows = np.flatnonzero(mask)
        features = np.empty((len(self._held_rows), self.index.frames, NUM_CHANNELS), np.uint16)
        filled = 0
        for group in np.unique(self._row_group[mask]):
            a, b = self.index.group_start[group], self.index.group_start[group + 1]
            local = np.flatnonzero(mask[a:b])
            features[filled : filled + len(local)] = self.index.read_group(int(group))[local]
            filled += len(local)
        rows = self._held_rows
        return _Rows(features, self.index.label[rows], self.index.kind[rows], rows)

    def _decode(self, group: int, cls: int) -> Future:
        """A future of the rows of ``cls`` in row group ``group``, decoded in a thread."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(_cores(), thread_name_prefix="mww-pool")
            executor = self._executor
        return executor.submit(self._read, group, cls)

    def _read(self, group: int, cls: int) -> _Rows:
        a, b = self.index.group_start[group], self.index.group_start[group + 1]
        features = self.index.read_group(group)
        local = np.flatnonzero(self._row_class[a:b] == cls)
        if len(local) < b - a:  # a row group shared by classes: keep this class's rows
            features = features[local]
        rows = a + local
        return _Rows(features, self.index.label[rows], self.index.kind[rows], rows)

    def close(self) -> None:
        """Stop the decoding threads and drop the pools (they are rebuilt when needed)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        self._pools = {}

    # ---- drawing -------------------------------------------------------------------------

    def _expected_draws(self, batch_size: int, phase: PhaseConfig) -> np.ndarray:
        """Rows drawn per step from each class, on average."""
        names = {"positive": 0, "negative": 1, "hard_negative": 2, "focus": FOCUS}
        sizes = {name: int(self.sizes[c]) for name, c in names.items()}
        sizes["any_negative"] = sizes["negative"] + sizes["hard_negative"]
        draws = np.zeros(len(CLASSES))
        for name, n in batch_plan(batch_size, phase, self.focus_fraction, sizes):
            classes = BUCKETS[name]
            total = sum(self.sizes[c] for c in classes)
            for c in classes:
                draws[c] += n * self.sizes[c] / total
        return draws

    def _pool(self, cls: int, phase_index: int, step: int, batch_size: int, phase) -> _Pool:
        key = (cls, phase_index, batch_size, phase.fingerprint())
        if key not in self._pools:
            if not any(k[1:] == key[1:] for k in self._pools):  # a new phase: drop the old pools
                self._pools = {}
            rate = self._expected_draws(batch_size, phase)[cls]
            per_group = self.sizes[cls] / len(self._class_groups[cls])
            slide = 10**12 if rate == 0 else max(1, round(self.draws_per_window * per_group / rate))
            self._pools[key] = _Pool(self, cls, phase_index, slide)
        return self._pools[key].at(step)

    def _positions(self, classes: tuple[int, ...]) -> np.ndarray:
        """Positions in the held rows of the held rows of ``classes``, in store order."""
        if classes not in self._held_positions:
            held_class = self._row_class[self._held_rows]
            self._held_positions[classes] = np.flatnonzero(np.isin(held_class, classes))
        return self._held_positions[classes]

    def _draw(self, rng, classes, count, pool_at, blocks: list[_Rows]) -> np.ndarray:
        """Draw ``count`` rows from ``classes`` like ``rng.choice`` over all of their rows.

        Returns (block, row in block) per draw; pool blocks are appended to ``blocks`` (block 0
        is the held rows).
        """
        held = self._positions(classes)
        streamed = [c for c in classes if c in self.streamed]
        sizes = [int(self.sizes[c]) for c in streamed]
        picks = rng.integers(0, len(held) + sum(sizes), count)
        where = np.zeros((count, 2), np.int64)
        inside = picks < len(held)
        where[inside, 1] = held[picks[inside]]
        start = len(held)
        for cls, size in zip(streamed, sizes, strict=True):
            mine = np.flatnonzero((picks >= start) & (picks < start + size))
            start += size
            if len(mine):
                pool_blocks, found = pool_at(cls).draw(rng, len(mine))
                found[:, 0] += len(blocks)
                where[mine] = found
                blocks += pool_blocks
        return where

    def batch(self, phase_index: int, step: int, batch_size: int, phase: PhaseConfig) -> Batch:
        """Features ``[batch, frames, 40]``, labels and sample weights for one step (and each
        row's engine, with ``engine_prefixes``)."""
        rng = np.random.default_rng([self.seed, phase_index, step])
        sizes = {name: int(sum(self.sizes[c] for c in cls)) for name, cls in BUCKETS.items()}

        def pool_at(cls: int) -> _Pool:
            return self._pool(cls, phase_index, step, batch_size, phase)

        blocks, parts, focus = [self._held], [], []
        for name, count in batch_plan(batch_size, phase, self.focus_fraction, sizes):
            parts.append(self._draw(rng, BUCKETS[name], count, pool_at, blocks))
            focus.append(np.full(count, name == "focus"))
        where = np.concatenate(parts)
        used = [(b, np.flatnonzero(where[:, 0] == b)) for b in np.unique(where[:, 0])]
        label = np.empty(len(where), np.int8)
        kind = np.empty(len(where), np.int8)
        row = np.empty(len(where), np.int64)
        for b, at in used:
            label[at] = blocks[b].label[where[at, 1]]
            kind[at] = blocks[b].kind[where[at, 1]]
            row[at] = blocks[b].row[where[at, 1]]

        def crop(starts: np.ndarray) -> np.ndarray:
            raw = np.empty((len(where), self.input_frames, NUM_CHANNELS), np.uint16)
            for b, at in used:
                frames = starts[at, None] + self._offsets
                raw[at] = blocks[b].features[where[at, 1][:, None], frames]
            return raw

        in_focus = np.concatenate(focus)
        batch = finish_batch(
            rng,
            crop,
            _KIND_NAMES[kind],
            label,
            self.index.frames - self.input_frames,
            phase,
            in_focus if in_focus.any() else None,
            self.focus_weight,
        )
        return batch if self.index.engine is None else (*batch, self.index.engine[row])
