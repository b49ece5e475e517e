"""Goal 1 (issue 16, goal 4): validation loss of the `default` preset on tinyshakespeare
against wall time, for one or more recipes run side by side.

Each point is its own run, in its own process, with `training.max_seconds` set to the
budget; the validation loss is on the whole held-out tail (the last 10% by position), in
nats per character like nanoGPT's. With several recipes, each budget runs every recipe in
turn (interleaved), so a comparison shares the machine's load of that moment. `today` is
the preset as it was before issue 16. With `--epochs`, the budgets are epochs instead
(no time limit): every recipe takes the same steps, for quality per step.

    .venv/bin/python -m bench.quality_per_minute [--budgets 10,20,40,80]
        [--recipes today,preset] [--set model.units=128 ...] [--epochs]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys


NANOGPT = {"val_loss": 1.89, "seconds": 79}  # nanoGPT's CPU recipe on this machine class

# Training fields on top of the `default` preset. `today` is the preset before issue 16:
# the rate x0.95 per epoch, the weights as trained, float32 products (its LSTMs still train
# through the compiled op, which the spec cannot turn off).
RECIPES = {
    "preset": {},
    "today": {"lr_schedule": "epoch_decay", "warmup_steps": 0, "ema_decay": None,
              "matmul_precision": "float32"},
    "constant": {"lr_schedule": "epoch_decay", "lr_decay": 1.0, "warmup_steps": 0,
                 "ema_decay": None},
    "cooldown": {"lr_schedule": "budget", "cooldown_fraction": 0.2, "ema_decay": None},
    "linear": {"lr_schedule": "budget", "cooldown_fraction": 1.0, "ema_decay": None},
    "ema": {"lr_schedule": "epoch_decay", "lr_decay": 1.0, "warmup_steps": 0,
            "ema_decay": 0.99},
    "cooldown+ema": {"lr_schedule": "budget", "cooldown_fraction": 0.2, "ema_decay": 0.99},
    # The preset with the LSTM op's products in bfloat16 (the preset's since 2026-12-08,
    # worker/native/bf16_gemm.h) or in float32 (before).
    "preset+bf16": {"matmul_precision": "bfloat16"},
    "preset+f32": {"matmul_precision": "float32"},
}


def parse_overrides(pairs):
    """["model.units=128", ...] -> {"model": {"units": 128}} (values parsed as JSON)."""
    sections = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        section, field = key.split(".", 1)
        sections.setdefault(section, {})[field] = json.loads(value)
    return sections


def point(recipe, budget, overrides, by_epochs=False):
    """One run, in this process: {"wall_s", "steps", "chars_per_s", "val_loss"}; `budget`
    in seconds, or epochs `by_epochs`."""
    from bench.common import corpus, spec_from, timed_train

    limit = ({"max_seconds": None, "epochs": int(budget)} if by_epochs
             else {"max_seconds": budget, "epochs": 1000})
    training = {**RECIPES[recipe], **overrides.get("training", {}), **limit, "patience": None}
    spec = spec_from("default", **{**overrides, "training": training})
    run = timed_train(spec, corpus("tinyshakespeare.txt"))
    # The wall rate against the epochs' own (steps only): what shared/sizing/throughput.py's
    # TRAIN_SHARE stands for.
    epoch_rates = [h["targets_per_s"] for h in run.trained.history if h["targets_per_s"]]
    return {"wall_s": run.wall_s, "steps": run.steps, "chars_per_s": run.chars_per_s,
            "val_loss": run.val_loss, "float32_val_loss": float32_val_loss(run, spec),
            "train_share": run.chars_per_s / statistics.median(epoch_rates)}


def float32_val_loss(run, spec):
    """The run's validation loss with float32 products (what the saved float32 file gives),
    for a recipe that trained and validated with bfloat16 ones; else its own."""
    if spec.training.matmul_precision == "float32":
        return run.val_loss
    from bench.common import corpus
    from shared.text.textprep import prepare_text
    from worker.datasets import make_datasets
    from worker.fused_lstm import use_fused_lstm

    training, model = spec.training, run.trained.model
    ids = run.trained.vocab.encode(prepare_text(corpus("tinyshakespeare.txt"),
                                                spec.preprocessing.mode))
    _, val_data = make_datasets(ids, spec.model.architecture, seq_length=training.seq_length,
                                batch_size=training.batch_size, vocab_size=run.trained.vocab.size,
                                validation_fraction=training.validation_fraction,
                                seed=training.seed)
    use_fused_lstm(model, "float32")
    model.make_test_function(force=True)
    return float(model.evaluate(val_data, verbose=0, return_dict=True)["loss"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", default="10,20,40,80")
    parser.add_argument("--recipes", default="today,preset",
                        help=f"comma-separated, of: {', '.join(RECIPES)}")
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.FIELD=VALUE",
                        help="applied to every recipe")
    parser.add_argument("--epochs", action="store_true",
                        help="budgets in epochs, not seconds (equal steps for every recipe)")
    parser.add_argument("--point", nargs=2, metavar=("RECIPE", "BUDGET"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    if args.point:
        print(json.dumps(point(args.point[0], float(args.point[1]), overrides, args.epochs)))
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    print(f"default preset on tinyshakespeare, overrides {overrides}")
    unit = "epochs" if args.epochs else "s"
    print(f"{'recipe':<14} {'budget ' + unit:>13} {'wall s':>7} {'steps':>6} {'chars/s':>8} "
          f"{'share':>6} {'val loss':>9} {'f32 val':>8}")
    for budget in args.budgets.split(","):
        for recipe in args.recipes.split(","):
            out = subprocess.run([sys.executable, "-m", "bench.quality_per_minute", "--point",
                                  recipe, budget, "--set", *args.set,
                                  *(["--epochs"] if args.epochs else [])],
                                 capture_output=True, text=True, check=True, env=env)
            run = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{recipe:<14} {float(budget):>13.0f} {run['wall_s']:>7.1f} "
                  f"{run['steps']:>6} {run['chars_per_s']:>8,.0f} {run['train_share']:>6.2f} "
                  f"{run['val_loss']:>9.3f} {run['float32_val_loss']:>8.3f}",
                  flush=True)
    print(f"nanoGPT (CPU recipe): val loss {NANOGPT['val_loss']} after {NANOGPT['seconds']} s")


if __name__ == "__main__":
    main()
