"""Goal 1: training-step throughput of the `default` preset's graph and the variants tried.

Each variant trains on random ids in its own process (TensorFlow's thread pools are per
process), variants interleaved round by round so load from elsewhere falls on all; a
figure is the median over rounds of the 5th-percentile step time (the step least slowed by
other work). Also prints the dense-matmul peak of this machine, and GFLOP/s counted as
3 x the forward pass's matrix products (backward costs two products per forward one;
elementwise gate maths, the embedding lookup and the optimizer are not counted):
per target character, the forward FLOPs shared/sizing/architecture.py counts.

With `--torch-python` (an interpreter that has torch==2.13.0, bench/README.md), a row for
the same shape in PyTorch (bench/torch_lstm.py) runs interleaved with ours.

    .venv/bin/python -m bench.train_speed [--rounds 3] [--torch-python /work/torch-venv/bin/python]
        [--only "hoisted projection, threads 2/2" ...]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

VOCAB = 65  # tinyshakespeare's characters
TORCH = "PyTorch 2.13 (oneDNN)"
HOISTED = "hoisted projection, threads 2/2"
KERAS_LOOP = "Keras' LSTM loop, threads 1/2"  # the preset's graph without the op
FUSED = "fused op, threads 1/2"  # the product's: worker/fused_lstm.py (`make` builds it)
FUSED_BF16 = "fused op, bfloat16 products, 1/2"  # training.matmul_precision "bfloat16"
VARIANTS = {
    # name: (batch, window (None: the preset's), fixed window and unroll (or "hoisted":
    # bench.hoisted_lstm's input projection out of the time loop; "fused": the compiled op
    # of worker/fused_lstm.py, "fused-bf16" with its bfloat16 products), intra-op threads,
    # inter-op threads)
    FUSED: (64, None, "fused", 1, 2),
    FUSED_BF16: (64, None, "fused-bf16", 1, 2),
    "fused op, threads 1/1": (64, None, "fused", 1, 1),
    HOISTED: (64, None, "hoisted", 2, 2),
    "hoisted projection, threads 2/1": (64, None, "hoisted", 2, 1),
    "hoisted projection, threads 1/2": (64, None, "hoisted", 1, 2),
    KERAS_LOOP: (64, None, False, 1, 2),
    "unroll=True, fixed window": (64, None, True, 1, 2),
    "threads 2/2 (TF default)": (64, None, False, 2, 2),
    "threads 2/1": (64, None, False, 2, 1),
    "batch 128": (128, None, False, 1, 2),
    "batch 256": (256, None, False, 1, 2),
    # The preset's 4,096 target characters a step, cut into more, shorter windows.
    "batch 128, window 32": (128, 32, False, 1, 2),
    "batch 256, window 16": (256, 16, False, 1, 2),
}
STEPS = 60  # timed steps per run, after 3 untimed ones (tracing)


def measure(name):
    """In this process: the 5th-percentile step time of variant `name`, in seconds."""
    batch, window, unroll, intra, inter = VARIANTS[name]
    import keras
    import numpy as np
    import tensorflow as tf

    from bench.common import spec_from
    from bench.hoisted_lstm import hoist_input_projections
    from worker.fused_lstm import bf16_supported, fused_ops, use_fused_lstm
    from worker.models import build_model

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    spec = spec_from("default")
    seq_length = window or spec.training.seq_length
    model = build_model(spec, VOCAB)  # the default preset's time axis takes any length
    if unroll == "hoisted":
        hoist_input_projections(model)
    elif unroll in ("fused", "fused-bf16"):
        if fused_ops() is None:
            raise SystemExit("worker/native/fused_lstm.so is not built: run make")
        if unroll == "fused-bf16" and not bf16_supported():
            raise SystemExit("the op has no bfloat16 products here (no AVX512_BF16)")
        use_fused_lstm(model, "bfloat16" if unroll == "fused-bf16" else "float32")
    elif unroll:  # the same layers on a fixed window, unrolled
        ids = keras.Input(shape=(seq_length,), dtype="int32")
        x = model.get_layer("embedding")(ids)
        for _ in range(spec.model.layers):
            x = keras.layers.LSTM(spec.model.units, return_sequences=True,
                                  unroll=True)(x)
        model = keras.Model(ids, model.get_layer("head")(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = (rng.integers(0, VOCAB, (batch, seq_length)).astype(np.int32) for _ in range(2))
    for _ in range(3):
        model.train_on_batch(x, y)
    times = []
    for _ in range(STEPS):
        started = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - started)
    print(json.dumps(float(np.percentile(times, 5))))


def torch_step_s(torch_python, threads=2):
    """PyTorch's 5th-percentile step time for the same shape, in its own interpreter."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([torch_python, os.path.join(here, "torch_lstm.py"),
                          "--threads", str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def matmul_peak_gflops(n=2048, repeats=10):
    """Best GFLOP/s of an n x n float32 product with TF's default thread pools (2 cores)."""
    import tensorflow as tf

    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    product = tf.function(tf.matmul)
    product(a, b).numpy()
    best = min(_timed(lambda: product(a, b).numpy()) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn):
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--torch-python", help="an interpreter with torch==2.13.0: adds "
                        "PyTorch's row (bench/torch_lstm.py), interleaved with ours")
    parser.add_argument("--only", nargs="*", choices=VARIANTS, help="these variants only")
    parser.add_argument("--torch-threads", type=int, default=2)
    args = parser.parse_args()
    if args.variant:
        return measure(args.variant)
    from bench.common import spec_from
    from shared.sizing.architecture import describe

    spec = spec_from("default")
    per_char = 3 * describe(spec, VOCAB).token_flops  # forward and backward
    seq_length = spec.training.seq_length
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    variants = {name: VARIANTS[name] for name in (args.only or VARIANTS)}
    if args.torch_python:
        variants[TORCH] = (64, None, None, args.torch_threads, None)
    steps = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name in variants:
            if name == TORCH:
                steps[name].append(torch_step_s(args.torch_python, args.torch_threads))
                continue
            out = subprocess.run([sys.executable, "-m", "bench.train_speed", "--variant", name],
                                 capture_output=True, text=True, check=True, env=env)
            steps[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{per_char / 1e6:.2f} MFLOP per target character (3 x forward matrix products)")
    print(f"{'variant':<34} {'step ms':>8} {'chars/s':>9} {'GFLOP/s':>8} {'vs PyTorch':>10}")
    torch_s = statistics.median(steps[TORCH]) if TORCH in steps else None
    for name, (batch, window, *_) in variants.items():
        step_s = statistics.median(steps[name])
        chars_per_s = batch * (window or seq_length) / step_s
        ratio = f"{torch_s / step_s:.2f}x" if torch_s else "-"
        print(f"{name:<34} {1000 * step_s:>8.1f} {chars_per_s:>9,.0f} "
              f"{chars_per_s * per_char / 1e9:>8.0f} {ratio:>10}", flush=True)
    print(f"dense 2048x2048 matmul, TF, 2 cores: {matmul_peak_gflops():.0f} GFLOP/s")


if __name__ == "__main__":
    main()
