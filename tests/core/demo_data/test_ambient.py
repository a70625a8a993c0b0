"""Tests for mww_core.demo_data.ambient: who talks in the mining corpus's recordings."""

from __future__ import annotations

import numpy as np

from mww_core.demo_data.ambient import _AmbientPool, _one_engine_each


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
    assert sum(len(p.speech) for p in pools[:1] + pools[3:4]) == 30 + 70


def test_one_engine_pool_is_kept_as_it_is():
    pool = _pool(n_piper=0, n_espeak=12)
    assert _one_engine_each(pool, n_files=4) == [pool] * 4
