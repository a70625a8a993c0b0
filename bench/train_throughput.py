"""Training steps per second for MixedNet at batch 128, the data-wait share, and step variants.

Usage: ``python -m bench.train_throughput [--steps 150] [--warmup 10] [--rounds 3]
[--features DIR] [--variants NAME ...]``

Runs the Trainer's own pieces -- seeded ``TrainingData`` batches from the demo run's training
features (prefetched in a thread, as in training) and its compiled ``train_step`` -- and prints
steps/s and the share of step time spent waiting for a batch. Each variant of the step runs in
its own process (thread counts and XLA flags are fixed when TensorFlow starts), and the variants
take turns for ``--rounds`` rounds so that load from other processes spreads over all of them;
the best round of each is printed beside the median. Variants:

- ``default``: the Trainer's step as it is (what training uses; no variant below beat it);
- ``xla``: the whole step compiled with XLA (``jit_compile=True``);
- ``xla-fusible``: XLA auto-clustering of elementwise ops only (convolutions stay on oneDNN);
- ``threads-1x2``: 1 intra-op and 2 inter-op threads (independent ops in parallel instead);
- ``threads-1x1``: one thread for everything (the single-core cost of a step);
- ``first-conv-matmul``: the first convolution's kernel gradient as one matmul of input frames
  (in isolation 40% faster than ``Conv2DBackpropFilter`` and bit-identical);
- ``fused-adam``: ``ResourceApplyAdam`` per variable instead of Keras' Adam (~10 ops each);
- ``fused-bn``: batch normalization in training as one ``FusedBatchNormV3`` (and its gradient)
  instead of Keras 3's ~15 elementwise and reduction ops per layer (the TF profiler put them at
  a quarter of the step's op time; fused, the step's op time fell 20%, its wall time did not);
- ``no-prefetch``: batches built in the training thread (``performance.prefetch_batches: 0``);
- ``no-onednn``: TensorFlow's own CPU kernels instead of oneDNN's (``TF_ENABLE_ONEDNN_OPTS=0``).

Every variant reports the sum of its weights after the timed steps: equal sums mean the variant
computes the same numbers as ``default``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = (
    "default",
    "xla",
    "xla-fusible",
    "threads-1x2",
    "threads-1x1",
    "first-conv-matmul",
    "fused-adam",
    "fused-bn",
    "no-prefetch",
    "no-onednn",
)


def _shards(features_dir: Path) -> list[Path]:
    record = features_dir / "stage.json"
    if not record.exists():
        raise SystemExit(
            f"{record} not found: run `make demo` first (or pass --features <run>/features)"
        )
    outputs = json.loads(record.read_text())["outputs"]["train_windows"]
    # Stage records name shards relative to the project folder the run was made in
    # (<project>/runs/<run>/features), which need not be the current folder.
    project = features_dir.resolve().parents[2]
    return [p if p.exists() else project / p for p in (Path(s) for s, _ in outputs.values())]


def measure(trainer, data, steps: int, warmup: int) -> dict:
    """Steps/s and seconds waiting for batches vs in the training step."""
    phase = trainer.config.training.phases[0]
    trainer._prepare_optimizer(phase.learning_rate)
    batches = trainer._batches(data, 0, phase, 0)
    waited = stepped = 0.0
    try:
        for step in range(warmup + steps):
            t0 = time.perf_counter()
            x, y, w = trainer._next_batch(batches, 0, step)
            t1 = time.perf_counter()
            trainer.train_step(x, y, w)
            t2 = time.perf_counter()
            if step >= warmup:
                waited += t1 - t0
                stepped += t2 - t1
    finally:
        if hasattr(batches, "close"):
            batches.close()
    return {
        "steps_per_s": steps / (waited + stepped),
        "ms_per_step": 1000 * (waited + stepped) / steps,
        "data_wait_share": waited / (waited + stepped),
    }


def _environment(variant: str) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if variant == "xla-fusible":
        env["TF_XLA_FLAGS"] = (
            "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit --tf_xla_ops_to_cluster=FUSIBLE"
        )
    if variant == "no-onednn":
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    return env


def _framed_conv(layer, x):
    """The first conv layer's convolution with its kernel gradient as one matmul of frames."""
    import tensorflow as tf

    kernel, stride = tf.convert_to_tensor(layer.kernel), layer.strides[0]

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            k, _, channels, filters = kernel.shape
            frames = tf.signal.frame(x[:, :, 0, :], k, stride, axis=1)  # [b, steps, k, c]
            patches = tf.reshape(frames, (-1, k * channels))
            dk = tf.matmul(patches, tf.reshape(dy, (-1, filters)), transpose_a=True)
            return tf.zeros_like(x), tf.reshape(dk, kernel.shape)  # x needs no gradient

        return tf.nn.convolution(x, kernel, strides=(stride, 1), padding="VALID"), grad

    return conv(x, kernel)


def _fused_adam(trainer):
    """Replace the optimizer step with one ``ResourceApplyAdam`` per variable."""
    import tensorflow as tf

    model, loss_fn = trainer.model, trainer.loss_fn
    keras_step = trainer._compile_step

    def compile_step(optimizer):
        variables = model.trainable_variables
        slots = [
            (optimizer._momentums[i], optimizer._velocities[i])
            for i in map(optimizer._get_variable_index, variables)
        ]

        @tf.function(input_signature=keras_step(optimizer).input_signature)
        def train_step(x, y, w):
            with tf.GradientTape() as tape:
                p = model(x, training=True)
                loss = loss_fn(y[:, None], p, sample_weight=w)
            grads = tape.gradient(loss, variables)
            t = tf.cast(optimizer.iterations + 1, tf.float32)
            b1, b2 = tf.constant(optimizer.beta_1), tf.constant(optimizer.beta_2)
            for g, v, (m, s) in zip(grads, variables, slots, strict=True):
                tf.raw_ops.ResourceApplyAdam(
                    var=v.value.handle, m=m.value.handle, v=s.value.handle,
                    beta1_power=b1**t, beta2_power=b2**t,
                    lr=tf.cast(optimizer.learning_rate, tf.float32), beta1=b1, beta2=b2,
                    epsilon=tf.constant(optimizer.epsilon), grad=g,
                )  # fmt: skip
            optimizer.iterations.assign_add(1)
            accuracy = tf.reduce_mean(tf.cast(tf.equal(p[:, 0] >= 0.5, y >= 0.5), tf.float32))
            return loss, accuracy

        return train_step

    return compile_step


def _fused_batch_norm(model) -> None:
    """Make every BatchNormalization layer of ``model`` train through ``FusedBatchNormV3``."""
    import keras
    import tensorflow as tf

    def fused_call(layer, inputs, training=None, mask=None):
        if not (training and layer.trainable) or mask is not None:
            return keras.layers.BatchNormalization.call(layer, inputs, training, mask)
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, layer.gamma, layer.beta, epsilon=layer.epsilon, is_training=True
        )
        n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), inputs.dtype)
        variance *= (n - 1) / n  # the op's is Bessel-corrected; Keras averages the biased one
        momentum = layer.momentum
        layer.moving_mean.assign(layer.moving_mean * momentum + mean * (1 - momentum))
        layer.moving_variance.assign(layer.moving_variance * momentum + variance * (1 - momentum))
        return y

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.call = fused_call.__get__(layer)


def run_variant(variant: str, features: Path, steps: int, warmup: int) -> dict:
    """Train ``warmup + steps`` steps in this process and return the figures."""
    import numpy as np
    import tensorflow as tf

    if variant.startswith("threads-"):
        intra, inter = variant.removeprefix("threads-").split("x")
        tf.config.threading.set_intra_op_parallelism_threads(int(intra))
        tf.config.threading.set_inter_op_parallelism_threads(int(inter))
    from mww_core.config import load_config
    from mww_core.store import read_windows
    from mww_core.training.batches import TrainingData
    from mww_core.training.trainer import Trainer

    config = load_config(
        "configs/demo.yaml",
        performance={"prefetch_batches": 0 if variant == "no-prefetch" else 4},
        training={"batch_size": 128, "phases": [{"steps": 10**6, "learning_rate": 1e-3}] * 2},
    )
    windows = read_windows(_shards(features))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, Path(tmp))
        if variant == "xla":
            compile_step = trainer._compile_step

            def jit_step(optimizer):
                step = compile_step(optimizer)
                return tf.function(
                    step.python_function, input_signature=step.input_signature, jit_compile=True
                )

            trainer._compile_step = jit_step
        elif variant == "first-conv-matmul":
            layer = trainer.model.get_layer("first_conv")
            layer.convolution_op = lambda x, kernel: _framed_conv(layer, x)
        elif variant == "fused-adam":
            trainer._compile_step = _fused_adam(trainer)
        elif variant == "fused-bn":
            _fused_batch_norm(trainer.model)
        data = TrainingData(windows, trainer.input_frames, config.training.seed)
        figures = measure(trainer, data, steps, warmup)
        weights = float(sum(np.sum(w, dtype=np.float64) for w in trainer.model.get_weights()))
    return {**figures, "weight_sum": weights, "windows": len(windows)}


def main() -> None:
    """Run every variant in its own process, round after round; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--features", type=Path, default=Path("runs/demo/features"))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = run_variant(args.child, args.features, args.steps, args.warmup)
        print(json.dumps(figures))
        return
    _shards(args.features)  # fail early, with the fix, when there is no demo run
    print(f"load average before: {os.getloadavg()}")
    results: dict[str, list[dict]] = {v: [] for v in args.variants}
    for _ in range(args.rounds):
        for variant in args.variants:
            command = [sys.executable, "-m", "bench.train_throughput", "--child", variant,
                       "--features", str(args.features), "--steps", str(args.steps),
                       "--warmup", str(args.warmup)]  # fmt: skip
            done = subprocess.run(
                command, capture_output=True, text=True, env=_environment(variant), check=False
            )
            if done.returncode != 0:
                raise SystemExit(f"variant {variant} failed:\n{done.stderr[-3000:]}")
            results[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"load average after: {os.getloadavg()}")
    first = results[args.variants[0]][0]
    print(
        f"{first['windows']} training windows from {args.features}; MixedNet (hey_jarvis shape), "
        f"batch 128, {args.steps} steps after {args.warmup}, {args.rounds} rounds"
    )
    reference = results.get("default", results[args.variants[0]])[0]["weight_sum"]
    for variant, runs in results.items():
        rates = [r["steps_per_s"] for r in runs]
        best, median = max(rates), statistics.median(rates)
        wait = statistics.median(r["data_wait_share"] for r in runs)
        same = "same weights" if runs[0]["weight_sum"] == reference else "other weights"
        print(
            f"{variant:>12}: best {best:5.1f} steps/s, median {median:5.1f} ({1000 / best:.1f} "
            f"ms/step), data wait {100 * wait:.1f}% of step time, "
            f"{same} (sum {runs[0]['weight_sum']:.6f})"
        )


if __name__ == "__main__":
    main()
