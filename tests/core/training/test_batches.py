"""Training batches: SpecAugment masks, VTLP warps and mixup per phase, seeded like the batch."""

import numpy as np
import pytest

from mww_core.config import PhaseConfig, SpecAugmentConfig, VtlpConfig
from mww_core.frontend import channel_centres_hz
from mww_core.store import Windows
from mww_core.training.batches import TrainingData, spec_augment, vtlp


def _data(frames=149):
    rng = np.random.default_rng(0)
    n = 64
    label = (np.arange(n) % 4 == 0).astype(np.int8)
    windows = Windows(
        # 1..399: no feature is 0 before masking, so every 0 in a batch is a mask
        features=rng.integers(1, 400, (n, 160, 40)).astype(np.uint16),
        label=label,
        weight_class=np.where(label == 1, "positive", "negative").astype(object),
        source=np.array(["s"] * n, dtype=object),
        offset_s=np.zeros(n, np.float32),
        seed=np.zeros(n, np.int64),
    )
    return TrainingData(windows, frames, seed=7)


def _phase(**spec_augment):
    return PhaseConfig(steps=10, learning_rate=0.001, spec_augment=spec_augment)


def test_spec_augment_off_draws_nothing_and_on_only_zeroes_masked_cells():
    data = _data()
    plain = data.batch(0, 5, 32, _phase())
    zero = data.batch(0, 5, 32, _phase(time_masks=0, freq_masks=0))
    masked = data.batch(0, 5, 32, _phase(time_masks=2, time_mask_max_frames=20))
    for a, b in zip(plain, zero, strict=True):
        np.testing.assert_array_equal(a, b)
    # The masks are drawn after rows and crops: every unmasked value, the labels and the
    # weights are those of the unmasked batch, so a phase without masks is unchanged.
    hidden = masked[0] == 0
    assert hidden.any() and not (plain[0] == 0).any()
    np.testing.assert_array_equal(masked[0][~hidden], plain[0][~hidden])
    np.testing.assert_array_equal(masked[1], plain[1])
    np.testing.assert_array_equal(masked[2], plain[2])


def test_time_and_frequency_masks_hide_whole_frames_and_bins():
    data = _data()
    phase = _phase(time_masks=2, time_mask_max_frames=15, freq_masks=1, freq_mask_max_bins=6)
    x, _, _ = data.batch(1, 3, 64, phase)
    frames = np.all(x == 0, axis=2)  # [batch, frames]: frames masked in every channel
    bins = np.all(x == 0, axis=1)  # [batch, channels]: channels masked in every frame
    assert ((x == 0) == (frames[:, :, None] | bins[:, None, :])).all()  # nothing else is 0
    assert frames.sum(axis=1).max() <= 2 * 15 and bins.sum(axis=1).max() <= 6
    assert frames.any(axis=1).mean() > 0.5 and bins.any(axis=1).mean() > 0.5
    assert len({tuple(np.flatnonzero(row)) for row in frames}) > 10  # drawn per example
    np.testing.assert_array_equal(x, data.batch(1, 3, 64, phase)[0])  # (seed, phase, step)
    assert not np.array_equal(x, data.batch(1, 4, 64, phase)[0])


def test_mask_spans_are_contiguous_and_never_wider_than_the_maximum():
    rng = np.random.default_rng(0)
    x = np.ones((200, 50, 40), np.float32)
    out = spec_augment(x, rng, SpecAugmentConfig(time_masks=1, time_mask_max_frames=8))
    for row in np.all(out == 0, axis=2):
        hidden = np.flatnonzero(row)
        if len(hidden):
            assert hidden[-1] - hidden[0] + 1 == len(hidden) <= 8
    widths = np.all(out == 0, axis=2).sum(axis=1)
    assert set(widths) == set(range(9))  # every width 0..8 occurs
    assert (x == 1).all()  # the input is not changed in place


def test_masks_without_a_width_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="set freq_mask_max_bins above 0, or freq_masks: 0"):
        SpecAugmentConfig(freq_masks=2)
    with pytest.raises(ValueError, match="less than or equal to 40"):
        SpecAugmentConfig(freq_masks=1, freq_mask_max_bins=41)


def test_focus_rows_get_their_share_and_weight_and_the_rest_is_rehearsed():
    plain = _data()
    focus = np.zeros(len(plain.windows), bool)
    focus[[1, 2, 3]] = True  # three negatives stand for a retraining round's new windows
    data = TrainingData(plain.windows, 149, 7, focus, focus_fraction=0.25, focus_weight=9.0)
    phase = _phase()
    for step in range(5):
        rng = np.random.default_rng([7, 0, step])
        rows = data._rows(rng, 32, phase)
        in_focus = np.isin(rows, [1, 2, 3])
        assert in_focus.sum() == 8  # a quarter of every batch
        assert (plain.windows.label[rows[~in_focus]] == 1).sum() == 8  # positive_fraction 0.25
        _, _, weights = data.batch(0, step, 32, phase)
        assert (weights == 9.0).sum() == 8
    # Without a focus the batches are the ones drawn before focus rows existed.
    for a, b in zip(plain.batch(0, 3, 32, phase), TrainingData(plain.windows, 149, 7).batch(
            0, 3, 32, phase), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)


def _peak_channel(spectrum: np.ndarray) -> float:
    """Centre of mass of the channels above half the peak."""
    top = np.where(spectrum >= spectrum.max() / 2, spectrum, 0)
    return float((top * np.arange(len(spectrum))).sum() / top.sum())


def test_vtlp_moves_a_formant_by_its_factor_and_keeps_unwarped_rows():
    centres = channel_centres_hz()
    x = np.zeros((3, 6, 40), np.float32)
    x[:, :, 20] = 10.0  # one formant at channel 20's centre frequency
    up = vtlp(x, np.random.default_rng(0), VtlpConfig(probability=1.0, factor=(1.15, 1.15)))
    down = vtlp(x, np.random.default_rng(0), VtlpConfig(probability=1.0, factor=(0.87, 0.87)))
    for warped, factor in ((up, 1.15), (down, 0.87)):
        moved = np.interp(_peak_channel(warped[0, 0]), np.arange(40), centres)
        assert moved == pytest.approx(centres[20] * factor, rel=0.02)
        np.testing.assert_array_equal(warped[:, 1:], warped[:, :1].repeat(5, axis=1))
    assert (x[:, :, 20] == 10).all() and x.sum() == 3 * 6 * 10  # the input is not changed
    same = vtlp(x, np.random.default_rng(0), VtlpConfig(probability=1.0, factor=(1.0, 1.0)))
    np.testing.assert_allclose(same, x, atol=1e-4)


def test_vtlp_in_a_phase_warps_its_share_of_rows_seeded_and_leaves_labels():
    data = _data()
    plain = data.batch(0, 5, 64, _phase())
    phase = PhaseConfig(steps=10, learning_rate=0.001, vtlp={"probability": 0.5})
    warped = data.batch(0, 5, 64, phase)
    changed = ~np.all(np.isclose(warped[0], plain[0]), axis=(1, 2))
    assert 16 <= changed.sum() <= 48  # about half the rows
    np.testing.assert_array_equal(warped[0][~changed], plain[0][~changed])
    np.testing.assert_array_equal(warped[1], plain[1])
    np.testing.assert_array_equal(warped[2], plain[2])
    np.testing.assert_array_equal(warped[0], data.batch(0, 5, 64, phase)[0])
    assert not np.array_equal(warped[0], data.batch(0, 6, 64, phase)[0])


def test_vtlp_factors_must_be_a_positive_range():
    with pytest.raises(ValueError, match="0 < low <= high"):
        VtlpConfig(probability=0.5, factor=(1.1, 0.9))


def test_mixup_blends_each_row_with_a_partner_mostly_keeping_itself():
    data = _data()
    plain = data.batch(0, 5, 64, _phase())
    phase = PhaseConfig(steps=10, learning_rate=0.001, mixup_alpha=0.4)
    x, y, w = data.batch(0, 5, 64, phase)
    # Labels become shares of the two rows' labels: some soft, each at least half its own.
    soft = (y > 0) & (y < 1)
    assert soft.sum() > 8
    assert np.all(np.abs(y - plain[1]) <= 0.5 + 1e-6)
    # Each row is a convex blend of its own features and one other row's, with its label's
    # share: recover the share from a soft label and check the blend against every row.
    for row in np.flatnonzero(soft)[:5]:
        share = y[row] if plain[1][row] == 1 else 1.0 - y[row]
        partner = (x[row] - share * plain[0][row]) / (1.0 - share)
        distances = np.abs(plain[0] - partner).max(axis=(1, 2))
        assert distances.min() < 1e-3
        assert plain[1][np.argmin(distances)] != plain[1][row]  # the label came from it
    assert not np.array_equal(w, plain[2])  # weights blend too (negatives weigh more)
    np.testing.assert_array_equal(x, data.batch(0, 5, 64, phase)[0])  # (seed, phase, step)
    assert not np.array_equal(x, data.batch(0, 6, 64, phase)[0])


def test_mixup_off_leaves_the_batch_as_it_was():
    data = _data()
    plain = data.batch(0, 5, 32, _phase())
    off = data.batch(0, 5, 32, PhaseConfig(steps=10, learning_rate=0.001, mixup_alpha=0.0))
    for a, b in zip(plain, off, strict=True):
        np.testing.assert_array_equal(a, b)
