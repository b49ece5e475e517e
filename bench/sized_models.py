"""Goal 4: the `default` preset as is against the model shared.sizing.model_sizing picks for it.

Corpora: the first 100 KB and 1 MB of tinyshakespeare.txt, and for 10 MB the first 10 MB
of `--text-file` (a real corpus; bench/README.md, goal 4, says how to make one from a
Debian package here). Without it, 10 MB repeats tinyshakespeare.txt and frankenstein-2.txt
one after the other (there is no 10 MB handout): the repeats make its validation tail text
the model has seen, so that row then measures fit, not generalization. Budgets: 30, 120
and 600 s of `training.max_seconds`, with the preset's early stopping (patience 3) and as
many epochs as the budget allows. Cells run cheapest first; each prints as it ends.
`--wide` puts the rule's wide model in the sized column whatever the rule picks, to find
where it starts to win.

    .venv/bin/python -m bench.sized_models [--corpora 100KB,1MB,10MB] [--budgets 30,120,600]
        [--text-file python3.11.txt] [--wide]
"""

import argparse
from pathlib import Path

from bench.common import corpus, spec_from, timed_train
from shared.text.corpus_text import decode_corpus
from shared.sizing.model_sizing import WIDE, sized_default

SIZES = {"100KB": 100_000, "1MB": 1_000_000, "10MB": 10_000_000}


def text_of(size_name, text_file=None):
    shakespeare = corpus("tinyshakespeare.txt")
    chars = SIZES[size_name]
    if chars <= len(shakespeare):
        return shakespeare[:chars]
    if text_file is not None:
        text = decode_corpus(Path(text_file).read_bytes())[0]
        if len(text) < chars:
            raise SystemExit(f"{text_file} has {len(text)} characters; {size_name} needs {chars}")
        return text[:chars]
    both = shakespeare + corpus("frankenstein-2.txt")
    return (both * (chars // len(both) + 1))[:chars]


def run(text, budget, sized, wide=False):
    overrides = {"training": {"max_seconds": budget, "epochs": 10_000}}
    if sized:
        chosen = WIDE if wide else sized_default(len(text), budget)
        overrides = {"model": chosen["model"],
                     "training": {**chosen["training"], **overrides["training"]}}
    spec = spec_from("default", **overrides)
    return spec, timed_train(spec, text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default="100KB,1MB,10MB")
    parser.add_argument("--budgets", default="30,120,600")
    parser.add_argument("--text-file", help="a real corpus whose first 10 MB is the 10MB row")
    parser.add_argument("--wide", action="store_true",
                        help="the rule's wide model in the sized column, whatever it picks "
                             "(to place its threshold)")
    args = parser.parse_args()
    cells = sorted(((float(b), c) for b in args.budgets.split(",")
                    for c in args.corpora.split(",")), key=lambda cell: (cell[0], SIZES[cell[1]]))
    # Seen: millions of target characters each run trained on, to place the rule's
    # thresholds by what the runs saw rather than by budget (machines differ in speed).
    print(f"{'corpus':>6} {'budget s':>8} {'fixed val':>10} {'sized val':>10} "
          f"{'fixed seen':>10} {'sized seen':>10}  sized model")
    for budget, size_name in cells:
        text = text_of(size_name, args.text_file)
        _, fixed = run(text, budget, sized=False)
        spec, sized = run(text, budget, sized=True, wide=args.wide)
        model = spec.model
        print(f"{size_name:>6} {budget:>8.0f} {fixed.val_loss:>10.3f} {sized.val_loss:>10.3f} "
              f"{fixed.target_chars / 1e6:>9.1f}M {sized.target_chars / 1e6:>9.1f}M  "
              f"{model.layers}x{model.units} dropout {model.dropout} "
              f"lr {spec.training.learning_rate:g}", flush=True)


if __name__ == "__main__":
    main()
