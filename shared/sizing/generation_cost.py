"""How long a generation job will take, estimated before it is accepted.

A generation job runs on a generate worker with a hard time limit
(TEXTGEN_GENERATION_MAX_S); a request whose estimate is over it is refused with the
estimate, instead of holding the worker for hours. The sampler (worker/sampling.py) does
one step per token for all samples at once, whose FLOPs the model's description counts
(shared/sizing/architecture.py: a `tutorial` step is a whole window through each layer).

Constants from bench/generation_speed.py on 2 cores (bench/README.md, 2026-11-28): one
stream of a 2x128 model at 6,300 chars/s, 32 streams at 45,000; the seed model at 56 and
206. A step costs about STEP_OVERHEAD_S plus its FLOPs at FLOPS_PER_S; both are set so the
estimate errs high on those figures.
"""

from shared.sizing.architecture import describe

STEP_OVERHEAD_S = 150e-6  # Python and NumPy dispatch per step, whatever the size
FLOPS_PER_S = 10e9  # the slowest effective rate measured (one tutorial stream: ~11 GFLOP/s)


def estimate_generation_s(config, vocab_size, tokens, streams):
    """Seconds to generate `tokens` steps (prompt included) for `streams` samples at once
    from the model whose record's `config` (its spec) and `vocab_size` are given."""
    token_flops = describe(config, vocab_size).token_flops
    per_step = STEP_OVERHEAD_S + streams * token_flops / FLOPS_PER_S
    return tokens * per_step
