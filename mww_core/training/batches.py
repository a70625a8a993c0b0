"""Training batches: seeded sampling (a pure function of seed, phase and step) and prefetching."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from mww_core.config import ClassWeights, PhaseConfig, SpecAugmentConfig, VtlpConfig
from mww_core.evaluation.slips import Slips
from mww_core.frontend import NUM_CHANNELS, channel_centres_hz, channel_position, features_to_float
from mww_core.store import StoredStream, Stream, Windows, engine_codes

Batch = tuple[np.ndarray, ...]  # features, labels, weights[, engines]


def class_weight_vector(weight_class: np.ndarray, weights: ClassWeights) -> np.ndarray:
    """Loss weight of each example from its class (positive, negative, hard_negative)."""
    table = weights.model_dump()
    try:
        return np.array([table[c] for c in weight_class], np.float32)
    except KeyError as exc:
        raise ValueError(
            f"unknown example class {exc.args[0]!r}; expected one of {', '.join(table)}"
        ) from None


def batch_plan(
    batch_size: int, phase: PhaseConfig, focus_fraction: float, sizes: dict[str, int]
) -> list[tuple[str, int]]:
    """How many rows a batch draws from each set, in draw order.

    The sets are ``positive``, ``focus`` (e.g. a retraining round's new windows),
    ``hard_negative`` and ``negative`` (the other negatives), and ``any_negative`` (both kinds
    of negative together); ``sizes`` gives their row counts. Positives get ``positive_fraction``
    of the batch, focus rows ``focus_fraction``, mined windows ``hard_negative_fraction`` when
    there are both mined and other negatives; the rest are negatives drawn alike.
    """
    n_pos = max(1, int(round(batch_size * phase.positive_fraction)))
    n_focus = int(round(batch_size * focus_fraction)) if sizes["focus"] else 0
    rest = batch_size - n_focus
    n_hard = int(round(batch_size * phase.hard_negative_fraction))
    plan = [("positive", n_pos)] + ([("focus", n_focus)] if n_focus else [])
    if n_hard == 0 or sizes["hard_negative"] == 0 or sizes["negative"] == 0:
        return plan + [("any_negative", rest - n_pos)]
    n_hard = min(n_hard, rest - n_pos - 1)  # the mined windows get a fixed share of every batch
    return plan + [("hard_negative", n_hard), ("negative", rest - n_pos - n_hard)]


@dataclass
class TrainingData:
    """Training windows; ``batch(phase, step)`` is a pure function of its arguments and the seed.

    That makes the data order part of the checkpoint for free: a resumed phase draws exactly
    the batches an uninterrupted one would have.

    ``focus`` (a row mask) sets some windows apart, such as a retraining round's new negatives:
    ``focus_fraction`` of every batch is drawn from them at loss weight ``focus_weight``, and the
    rest of the batch is drawn from the other rows as the phase says (rehearsal).

    With ``engine_prefixes`` every batch carries a fourth array, each row's engine
    (``mww_core.store.engine_codes``), as ``StreamedTrainingData``'s do.
    """

    windows: Windows
    input_frames: int
    seed: int
    focus: np.ndarray | None = None
    focus_fraction: float = 0.0
    focus_weight: float = 1.0
    engine_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        wc = self.windows.weight_class
        focus = np.zeros(len(wc), bool) if self.focus is None else np.asarray(self.focus, bool)
        if len(focus) != len(wc):
            raise ValueError(f"focus mask has {len(focus)} rows for {len(wc)} windows")
        self.focus_rows = np.flatnonzero(focus)
        self.positives = np.flatnonzero((wc == "positive") & ~focus)
        self.negatives = np.flatnonzero((wc != "positive") & ~focus)
        self.hard_negatives = np.flatnonzero((wc == "hard_negative") & ~focus)
        self.plain_negatives = np.flatnonzero((wc == "negative") & ~focus)
        if len(self.positives) == 0 or len(self.negatives) == 0:
            raise ValueError(
                f"training needs positive and negative windows; got {len(self.positives)} "
                f"positive and {len(self.negatives)} negative"
            )
        self._offsets = np.arange(self.input_frames)[None, :]
        self._engine = (
            engine_codes(self.windows.source, self.engine_prefixes)
            if self.engine_prefixes
            else None
        )

    def _rows(self, rng: np.random.Generator, batch_size: int, phase: PhaseConfig) -> np.ndarray:
        """Row indices of one batch: positives, focus rows, hard negatives, other negatives."""
        buckets = {
            "positive": self.positives,
            "focus": self.focus_rows,
            "hard_negative": self.hard_negatives,
            "negative": self.plain_negatives,
            "any_negative": self.negatives,
        }
        sizes = {name: len(rows) for name, rows in buckets.items()}
        plan = batch_plan(batch_size, phase, self.focus_fraction, sizes)
        return np.concatenate([rng.choice(buckets[name], n) for name, n in plan])

    def batch(self, phase_index: int, step: int, batch_size: int, phase: PhaseConfig) -> Batch:
        """Features ``[batch, frames, 40]`` (with the phase's SpecAugment masks), labels and
        sample weights for one step.
        """
        rng = np.random.default_rng([self.seed, phase_index, step])
        rows = self._rows(rng, batch_size, phase)
        features = self.windows.features
        offsets = self._offsets

        def crop(starts: np.ndarray) -> np.ndarray:
            return features[rows[:, None], starts[:, None] + offsets]

        in_focus = np.isin(rows, self.focus_rows) if len(self.focus_rows) else None
        batch = finish_batch(
            rng,
            crop,
            self.windows.weight_class[rows],
            self.windows.label[rows],
            features.shape[1] - self.input_frames,
            phase,
            in_focus,
            self.focus_weight,
        )
        return batch if self._engine is None else (*batch, self._engine[rows])


def finish_batch(
    rng: np.random.Generator,
    crop: Callable[[np.ndarray], np.ndarray],
    weight_class: np.ndarray,
    label: np.ndarray,
    spare: int,
    phase: PhaseConfig,
    in_focus: np.ndarray | None = None,
    focus_weight: float = 1.0,
) -> Batch:
    """Crop, weigh, mask and blend the drawn rows of one batch (after they were drawn).

    Positives keep their end (where the word ends), and so do hard negatives (where the model
    fired); other negatives are cropped anywhere in their ``spare`` extra frames.

    Args:
        rng: The batch's generator, after drawing its rows.
        crop: Raw uint16 features ``[batch, input_frames, 40]`` of the rows from their start frames.
        weight_class: Each row's weight class.
        label: Each row's label.
        spare: Frames a window has beyond the model's input.
        phase: The phase (class weights, VTLP, SpecAugment, mixup).
        in_focus: Rows drawn from the focus set; they get ``focus_weight``.
        focus_weight: Loss weight of focus rows.
    """
    keep_end = weight_class != "negative"
    starts = np.where(keep_end, spare, rng.integers(0, spare + 1, len(weight_class)))
    x = features_to_float(crop(starts))
    y = label.astype(np.float32)
    w = class_weight_vector(weight_class, phase.class_weights)
    if in_focus is not None:
        w[in_focus] = focus_weight
    # Drawn last (the warp, the masks, then the blend): with them off, every draw above is
    # unchanged.
    if phase.vtlp.probability > 0:
        x = vtlp(x, rng, phase.vtlp)
    if phase.spec_augment.enabled:
        x = spec_augment(x, rng, phase.spec_augment)
    if phase.mixup_alpha > 0:
        x, y, w = mixup(x, y, w, rng, phase.mixup_alpha)
    return x, y, w


def mixup(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, rng: np.random.Generator, alpha: float
) -> Batch:
    """Each row blended with a partner row of the same batch: ``s * own + (1 - s) * partner``
    for features, labels and weights, ``s`` drawn per row from Beta(alpha, alpha) and folded
    to at least 0.5 (a row stays mostly itself)."""
    partner = rng.permutation(len(y))
    share = rng.beta(alpha, alpha, len(y)).astype(np.float32)
    share = np.maximum(share, 1.0 - share)
    mixed = share[:, None, None] * x + (1.0 - share[:, None, None]) * x[partner]
    return (
        mixed.astype(np.float32),
        (share * y + (1.0 - share) * y[partner]).astype(np.float32),
        (share * w + (1.0 - share) * w[partner]).astype(np.float32),
    )


def vtlp(x: np.ndarray, rng: np.random.Generator, warp: VtlpConfig) -> np.ndarray:
    """Features ``[batch, frames, channels]`` with each drawn example's spectrum warped.

    A window warped by ``f`` shows at channel ``c`` what the original had at the frequency
    ``centre(c) / f``, read between the two nearest channels (linearly, on the mel-spaced
    channel axis) and held at the band's edges. Examples not drawn are returned unchanged.
    """
    batch = len(x)
    drawn = rng.random(batch) < warp.probability
    factors = rng.uniform(warp.factor[0], warp.factor[1], batch)
    if not drawn.any():
        return x
    rows = np.flatnonzero(drawn)
    source = channel_position(channel_centres_hz()[None, :] / factors[rows, None])
    source = np.clip(source, 0, NUM_CHANNELS - 1)
    below = np.minimum(np.floor(source).astype(np.intp), NUM_CHANNELS - 2)
    above_share = source - below
    # One [channels, channels] interpolation matrix per warped example: a batched matmul.
    mix = np.zeros((len(rows), NUM_CHANNELS, NUM_CHANNELS), np.float32)
    example, channel = np.indices(below.shape)
    mix[example, below, channel] = 1 - above_share
    mix[example, below + 1, channel] = above_share
    out = x.copy()
    out[rows] = np.matmul(x[rows], mix)
    return out


def spec_augment(x: np.ndarray, rng: np.random.Generator, masks: SpecAugmentConfig) -> np.ndarray:
    """Features ``[batch, frames, channels]`` with SpecAugment's masks set to 0, per example.

    Each example gets ``masks.time_masks`` spans of frames and ``masks.freq_masks`` bands of
    channels, each of a width drawn in ``[0, max]`` at a position drawn so it fits (Park et al.
    2019, https://arxiv.org/abs/1904.08779). 0 is the quietest feature value, as in
    microWakeWord's masks.
    """
    batch, frames, channels = x.shape
    hidden = _mask_spans(rng, batch, frames, masks.time_masks, masks.time_mask_max_frames)
    bands = _mask_spans(rng, batch, channels, masks.freq_masks, masks.freq_mask_max_bins)
    return np.where(hidden[:, :, None] | bands[:, None, :], np.float32(0), x)


def _mask_spans(
    rng: np.random.Generator, batch: int, length: int, count: int, max_width: int
) -> np.ndarray:
    """``[batch, length]`` booleans: ``count`` spans per row, each up to ``max_width`` long."""
    if count == 0:
        return np.zeros((batch, length), bool)
    widths = rng.integers(0, min(max_width, length) + 1, (batch, count))
    starts = rng.integers(0, length - widths + 1)
    position = np.arange(length)[None, None, :]
    inside = (position >= starts[..., None]) & (position < (starts + widths)[..., None])
    return inside.any(axis=1)


@dataclass
class ValidationSet:
    """Validation streams: joined positive clips, joined negative clips, ambient recordings.

    ``StoredStream``s (``store.open_streams``) are read chunk by chunk at each validation.
    """

    streams: list[Stream | StoredStream]
    slips: Slips | None = None  # near misses counted apart (``evaluation.find_slips``)

    def of_kind(self, kind: str) -> list[Stream | StoredStream]:
        """Streams of one kind."""
        return [s for s in self.streams if s.kind == kind]


class PrefetchedBatches:
    """Iterates ``make(step)`` for ``step`` in ``[start, stop)``, computed ahead in a thread.

    Each batch is still a pure function of its step, so prefetching changes no result; numpy's
    indexing and casts release the GIL, so the next batch is built while TF runs this one.
    """

    def __init__(self, make: Callable[[int], Batch], start: int, stop: int, depth: int = 4):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._fill, args=(make, start, stop), daemon=True, name="mww-batches"
        )
        self._thread.start()

    def _fill(self, make: Callable[[int], Batch], start: int, stop: int) -> None:
        for step in range(start, stop):
            try:
                item = (step, make(step), None)
            except Exception as exc:  # handed to the consumer, raised there
                item = (step, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if self._stop.is_set() or item[2] is not None:
                return

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        while True:
            try:
                _, batch, error = self._queue.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise StopIteration from None
                continue
            if error is not None:
                raise error
            return batch

    def close(self) -> None:
        """Stop the producer thread (also when training stops early)."""
        self._stop.set()
        self._thread.join(timeout=5)


def iterate_batches(source: Callable | Iterable, skip: int) -> Iterator[tuple]:
    """Batches from a factory (called once) or an iterable, after skipping ``skip`` of them.

    Skipping replays the data position of a resumed phase; it reproduces the uninterrupted
    order when the factory is deterministic.
    """
    batches = iter(source() if callable(source) else source)
    for _ in range(skip):
        next(batches)
    return batches
