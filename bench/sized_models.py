"""Goal 4: the `default` preset as is against the model shared.model_sizing picks for it.

Corpora: the first 100 KB and 1 MB of tinyshakespeare.txt, and 10 MB made by repeating
tinyshakespeare.txt and frankenstein-2.txt one after the other (there is no 10 MB handout:
the repeats make its validation tail text the model has seen, so that row measures fit,
not generalization). Budgets: 30, 120 and 600 s of `training.max_seconds`, with the
preset's early stopping (patience 3) and as many epochs as the budget allows. Cells run
cheapest first; each prints as it ends.

    .venv/bin/python -m bench.sized_models [--corpora 100KB,1MB,10MB] [--budgets 30,120,600]
"""

import argparse

from bench.common import corpus, spec_from, timed_train
from shared.model_sizing import sized_default

SIZES = {"100KB": 100_000, "1MB": 1_000_000, "10MB": 10_000_000}


def text_of(size_name):
    shakespeare = corpus("tinyshakespeare.txt")
    chars = SIZES[size_name]
    if chars <= len(shakespeare):
        return shakespeare[:chars]
    both = shakespeare + corpus("frankenstein-2.txt")
    return (both * (chars // len(both) + 1))[:chars]


def run(text, budget, sized):
    overrides = {"training": {"max_seconds": budget, "epochs": 10_000}}
    if sized:
        chosen = sized_default(len(text), budget)
        overrides = {"model": chosen["model"],
                     "training": {**chosen["training"], **overrides["training"]}}
    spec = spec_from("default", **overrides)
    return spec, timed_train(spec, text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default="100KB,1MB,10MB")
    parser.add_argument("--budgets", default="30,120,600")
    args = parser.parse_args()
    cells = sorted(((float(b), c) for b in args.budgets.split(",")
                    for c in args.corpora.split(",")), key=lambda cell: (cell[0], SIZES[cell[1]]))
    print(f"{'corpus':>6} {'budget s':>8} {'fixed val':>10} {'sized val':>10}  sized model")
    for budget, size_name in cells:
        text = text_of(size_name)
        _, fixed = run(text, budget, sized=False)
        spec, sized = run(text, budget, sized=True)
        model = spec["model"]
        print(f"{size_name:>6} {budget:>8.0f} {fixed.val_loss:>10.3f} {sized.val_loss:>10.3f}  "
              f"{model['layers']}x{model['units']} dropout {model['dropout']} "
              f"lr {spec['training']['learning_rate']:g}", flush=True)


if __name__ == "__main__":
    main()
