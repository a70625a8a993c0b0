"""Seeds of a model's random initial weights, independent of Python's global ``random``."""

from __future__ import annotations

import random

import keras


class InitialSeeds:
    """Seeds of a model's random initial weights, one per layer that draws, in build order.

    An unseeded Keras layer draws its seed from Python's global ``random`` when it is made (after
    ``keras.utils.set_random_seed``); any other thread drawing from it meanwhile (a Prefect
    task runner's, a server's) changes the model's initial weights. These seeds come from a
    generator of their own, seeded with ``seed``, in the order Keras would draw them: the same
    weights ``set_random_seed(seed)`` gives in a quiet process, whatever else runs. ``None``
    leaves every layer unseeded (Keras's draws).
    """

    def __init__(self, seed: int | None = None):
        self._random = None if seed is None else random.Random(seed)

    def __call__(self) -> int | None:
        """The next layer's seed (as Keras's ``make_default_seed`` draws it), or None."""
        return None if self._random is None else self._random.randint(1, int(1e9))

    def glorot(self) -> keras.initializers.Initializer:
        """A Glorot-uniform initializer (Keras's default for kernels) with the next seed."""
        return keras.initializers.GlorotUniform(seed=self())
