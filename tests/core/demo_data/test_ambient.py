"""Tests for mww_core.demo_data.ambient: who talks in the mining corpus's and training's
recordings."""

from __future__ import annotations

import numpy as np

from mww_core.demo_data.ambient import _AmbientPool, _one_engine_each, _write_ambient
from mww_core.demo_data.clock import _StageClock
from mww_core.demo_data.plan import MINING_POOL


def _pool(n_piper: int, n_espeak: int) -> _AmbientPool:
    def said(engine: str, i: int) -> tuple[str, np.ndarray]:
        return f"{engine}|voice|{{}}|sentence {i}", np.zeros(10, np.float32)

    utterances = [said("piper", i) for i in range(n_piper)]
    utterances += [said("espeak-ng", i) for i in range(n_espeak)]
    return _AmbientPool(speech=utterances, confusable=utterances[::2])


def _engines(pool: _AmbientPool) -> set[str]:
    return {key.split("|")[0] for key, _ in [*pool.speech, *pool.confusable]}


def test_each_mining_recording_is_one_engines_talk_in_proportion():
    pools = _one_engine_each(_pool(n_piper=30, n_espeak=70), n_files=10)
    assert [_engines(p) for p in pools] == [{"piper"}] * 3 + [{"espeak-ng"}] * 7
    assert len(pools[0].speech) == 30 and len(pools[3].speech) == 70  # each engine's whole talk


def test_one_engine_pool_is_kept_as_it_is():
    pool = _pool(n_piper=0, n_espeak=12)
    assert _one_engine_each(pool, n_files=4) == [pool] * 4


def _talk(n_piper: int, n_espeak: int) -> list[tuple[str, np.ndarray]]:
    """Utterances of a second of "talk" each, keyed as the builder keys them."""
    rng = np.random.default_rng(0)
    engines = ["piper"] * n_piper + ["espeak-ng"] * n_espeak
    return [
        (f"{engine}|voice|{{}}|sentence {i}", rng.normal(0, 0.1, 16_000).astype(np.float32))
        for i, engine in enumerate(engines)
    ]


def test_mining_recordings_written_are_one_engines_talk(tmp_path):
    utterances = _talk(n_piper=6, n_espeak=14)
    pools = {MINING_POOL: _AmbientPool(speech=utterances, confusable=utterances[::3])}
    files = _write_ambient(tmp_path, {MINING_POOL: 4.0}, pools, seed=1, clock=_StageClock(None))
    engines = [{u.split("|")[0] for u in meta["utterances"]} for meta in files.values()]
    assert len(engines) == 4 and all(len(e) == 1 for e in engines)
    assert sorted(e.pop() for e in engines) == ["espeak-ng"] * 3 + ["piper"]


def test_training_ambient_is_one_engines_talk_each_only_when_asked(tmp_path):
    utterances = _talk(n_piper=8, n_espeak=12)
    pool = _AmbientPool(speech=utterances, confusable=utterances[::3])
    pools = {"train": pool, "validation": pool}
    minutes = {"train": 4.0, "validation": 2.0}

    def engines(one_engine_each: bool, split: str) -> list[set[str]]:
        folder = tmp_path / str(one_engine_each)
        files = _write_ambient(
            folder, minutes, pools, 1, _StageClock(None), train_one_engine_each=one_engine_each
        )
        return [
            {u.split("|")[0] for u in meta["utterances"]}
            for name, meta in sorted(files.items())
            if name.startswith(f"{split}/")
        ]

    mixed = engines(False, "train")
    assert len(mixed) == 4 and any(len(e) == 2 for e in mixed)  # as before: engines mixed
    assert sorted(e.pop() for e in engines(True, "train")) == ["espeak-ng"] * 2 + ["piper"] * 2
    assert any(len(e) == 2 for e in engines(True, "validation"))  # validation stays mixed


def test_three_engines_each_get_recordings_of_their_own_in_proportion():
    pool = _pool(n_piper=30, n_espeak=50)
    pico = [(f"pico|en-US|{{}}|sentence {i}", np.zeros(10, np.float32)) for i in range(20)]
    pool = _AmbientPool(speech=pool.speech + pico, confusable=pool.confusable + pico[::2])
    pools = _one_engine_each(pool, n_files=10)
    assert [_engines(p) for p in pools] == [{"piper"}] * 3 + [{"pico"}] * 2 + [{"espeak-ng"}] * 5
    # A small share still gets one recording, and every engine keeps at least one.
    assert [_engines(p) for p in _one_engine_each(pool, n_files=3)] == [
        {"piper"}, {"pico"}, {"espeak-ng"}
    ]  # fmt: skip
    # A fourth engine, MBROLA, gets its own recordings after Pico's.
    mbrola = [(f"mbrola|mb-us2|{{}}|sentence {i}", np.zeros(10, np.float32)) for i in range(10)]
    pool = _AmbientPool(speech=pool.speech + mbrola, confusable=pool.confusable)
    assert [_engines(p) for p in _one_engine_each(pool, n_files=11)] == (
        [{"piper"}] * 3 + [{"pico"}] * 2 + [{"mbrola"}] + [{"espeak-ng"}] * 5
    )
