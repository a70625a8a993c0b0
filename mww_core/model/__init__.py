"""Model registry: one architecture per file, looked up by ``ModelConfig.name``."""

from __future__ import annotations

from mww_core.model import mixednet

MODELS = {"mixednet": mixednet.build}


def build_model(config):
    """Build the non-streaming Keras model named by ``config.name``."""
    try:
        builder = MODELS[config.name]
    except KeyError:
        raise ValueError(
            f"unknown model {config.name!r}; choose one of {', '.join(sorted(MODELS))}"
        ) from None
    return builder(config)


def save_weights(model, path) -> None:
    """Write the model's weights to an ``.npz`` atomically.

    npz rather than Keras' ``.weights.h5``: Keras' h5 loader trips numpy 2's ``__array__``
    deprecation on h5py datasets, and an npz is trivially portable.
    """
    import numpy as np

    from mww_core.atomic import atomic_path

    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, *model.get_weights())


def load_weights(model, path) -> None:
    """Load weights written by ``save_weights`` (same architecture)."""
    import numpy as np

    with np.load(path) as data:
        model.set_weights([data[f"arr_{i}"] for i in range(len(data.files))])
