"""Domain-adversarial training against telling engines apart (Ganin and Lempitsky, 2015).

A small classifier (``EngineAdversary.head``) learns from the model's embedding -- the input of
its sigmoid head -- which engine said a training window. Its gradient reaches the model
reversed and scaled by the phase's ``engine_adversarial``: the classifier gets better at
telling engines apart while the model is pushed to make that impossible. What the model then
learns of the wake word is what the engines share, not how one of them says it.

The classifier is trained beside the model, checkpointed with it, and never exported: the
model's own layers are all the device runs.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

HIDDEN_UNITS = 64  # the classifier's hidden layer


def reversed_gradient(weight: float):
    """Identity on the way forward; the gradient times ``-weight`` on the way back."""

    @tf.custom_gradient
    def reverse(x):
        def gradient(upstream):
            return -weight * upstream

        return tf.identity(x), gradient

    return reverse


class EngineAdversary:
    """The engine classifier on ``model``'s embedding, its optimizer, and a joint model that
    gives the wake-word probability and the embedding in one forward pass.

    Args:
        model: The wake-word model; its last layer must be named ``head``.
        engines: Number of engines (``training.engine_prefixes``).
        weight: The phase's ``engine_adversarial``.
        learning_rate: The classifier's Adam learning rate (the phase's).
        seed: Seed of the classifier's initial weights.
    """

    def __init__(
        self, model: keras.Model, engines: int, weight: float, learning_rate: float, seed: int
    ):
        try:
            embedding = model.get_layer("head").input
        except ValueError:
            raise ValueError(
                f"engine_adversarial needs the model's last layer to be named 'head'; "
                f"{model.name} has none: set the phase's engine_adversarial to 0"
            ) from None
        self.weight = weight
        self.joint = keras.Model(model.inputs, [model.output, embedding], name="joint")
        width = int(np.prod(embedding.shape[1:]))
        self.head = keras.Sequential(
            [
                keras.Input((width,)),
                keras.layers.Dense(
                    HIDDEN_UNITS,
                    activation="relu",
                    kernel_initializer=keras.initializers.GlorotUniform(seed),
                ),
                keras.layers.Dense(
                    engines, kernel_initializer=keras.initializers.GlorotUniform(seed + 1)
                ),
            ],
            name="engine_head",
        )
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        self.optimizer.build(self.head.trainable_variables)
        self._fresh = [v.numpy() for v in (*self.head.variables, *self.optimizer.variables)]

    def reset(self) -> None:
        """The classifier and its optimizer as they were made (a phase's restart)."""
        variables = (*self.head.variables, *self.optimizer.variables)
        for variable, value in zip(variables, self._fresh, strict=True):
            variable.assign(value)

    def losses(self, embedding, engine):
        """The classifier's loss on the rows of a known engine (``engine >= 0``) and its
        accuracy there; the embedding passes through the reversed gradient first."""
        known = tf.cast(engine >= 0, tf.float32)
        flat = tf.reshape(tf.cast(embedding, tf.float32), (tf.shape(embedding)[0], -1))
        logits = self.head(reversed_gradient(self.weight)(flat), training=True)
        target = tf.maximum(engine, 0)
        loss = keras.losses.sparse_categorical_crossentropy(target, logits, from_logits=True)
        count = tf.maximum(tf.reduce_sum(known), 1.0)
        guess = tf.argmax(logits, axis=-1, output_type=tf.int32)
        hits = tf.cast(tf.equal(guess, target), tf.float32)
        return tf.reduce_sum(loss * known) / count, tf.reduce_sum(hits * known) / count
