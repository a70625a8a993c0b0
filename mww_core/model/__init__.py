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
