"""How long a generation job will take, estimated before it is accepted.

A generation job runs on a generate worker with a hard time limit
(TEXTGEN_GENERATION_MAX_S); a request whose estimate is over it is refused with the
estimate, instead of holding the worker for hours. The sampler (worker/sampling.py) does
one step per token for all samples at once: an `embedding_lstm` step is one token through
each layer; a `tutorial` step is a whole window of seq_length tokens through each layer
(the tutorial's model has no carried state).

Constants from bench/generation_speed.py on 2 cores (bench/README.md, 2026-11-28): one
stream of a 2x128 model at 6,300 chars/s, 32 streams at 45,000; the seed model at 56 and
206. A step costs about STEP_OVERHEAD_S plus its FLOPs at FLOPS_PER_S; both are set so the
estimate errs high on those figures.
"""

from shared.train_memory import lstm_layer_sizes

STEP_OVERHEAD_S = 150e-6  # Python and NumPy dispatch per step, whatever the size
FLOPS_PER_S = 10e9  # the slowest effective rate measured (one tutorial stream: ~11 GFLOP/s)


def step_flops(config, vocab_size):
    """Multiply-adds x 2 for one token of one sample."""
    model = config["model"]
    embedded = model["architecture"] == "embedding_lstm"
    width = model["embedding_dim"] if embedded else 1
    flops = 0
    for units in lstm_layer_sizes(model):
        flops += 2 * 4 * units * (width + units)  # four gates over [input, state]
        width = units
    flops += 2 * width * vocab_size  # the head
    if not embedded:
        flops *= config["training"]["seq_length"]  # a whole window per token
    return flops


def estimate_generation_s(config, vocab_size, tokens, streams):
    """Seconds to generate `tokens` steps (prompt included) for `streams` samples at once."""
    per_step = STEP_OVERHEAD_S + streams * step_flops(config, vocab_size) / FLOPS_PER_S
    return tokens * per_step
