"""Each model family's layers, described once in plain Python.

worker/models.py builds the Keras model by walking `describe(spec, vocab_size).layers`; the
estimators (shared/sizing/train_memory.py, model_storage.py, generation_cost.py) count
parameters, LSTM units and FLOPs from the same list, so a changed layer changes them
together (tests/test_architecture.py checks the count against Keras' count_params()). No
TensorFlow here: the API imports this module.
"""

from dataclasses import dataclass

from shared.contracts.specs import TrainSpec

TUTORIAL = "tutorial"
EMBEDDING_LSTM = "embedding_lstm"

# What the model's input and output mean, per family; written to config.json so a reader of
# a saved model knows whether it holds probabilities or logits.
INPUT_DESCRIPTION = "token ids (batch, time)"
OUTPUT_DESCRIPTION = {
    TUTORIAL: "softmax over the next token after the window",
    EMBEDDING_LSTM: "logits for the next token at every position",
}


def lstm_name(i):
    """Name of the i-th LSTM layer, 1-based: the sampler finds the layers by it."""
    return f"lstm_{i}"


# The layers. `width` is features per time step out; `parameters` what Keras' count_params()
# says; `step_flops` multiply-adds x 2 for one time step of one sample (elementwise gate
# maths and lookups are not counted). Names are the Keras layers' names, which saved models
# keep and the sampler reads.

@dataclass(frozen=True)
class ScaledIds:
    """The tutorial's input: each id / vocab_size, one feature per step of a fixed window."""

    vocab_size: int
    window: int
    width = 1
    parameters = 0
    step_flops = 0


@dataclass(frozen=True)
class Embedding:
    vocab_size: int
    width: int
    name = "embedding"
    step_flops = 0  # a lookup

    @property
    def parameters(self):
        return self.vocab_size * self.width


@dataclass(frozen=True)
class LSTM:
    name: str
    in_width: int
    width: int  # units
    every_step: bool  # return_sequences: False gives the last step alone

    @property
    def parameters(self):
        # Four gates, each a kernel over the input, one over the state, and a bias.
        return 4 * self.width * (self.in_width + self.width + 1)

    @property
    def step_flops(self):
        return 2 * 4 * self.width * (self.in_width + self.width)


@dataclass(frozen=True)
class Dropout:
    name: str
    rate: float
    parameters = 0
    step_flops = 0


@dataclass(frozen=True)
class Head:
    """Dense over the vocabulary: probabilities when `softmax`, else logits."""

    in_width: int
    vocab_size: int
    softmax: bool
    name = "head"

    @property
    def parameters(self):
        return (self.in_width + 1) * self.vocab_size

    @property
    def step_flops(self):
        return 2 * self.in_width * self.vocab_size


@dataclass(frozen=True)
class Architecture:
    family: str  # TUTORIAL or EMBEDDING_LSTM; the Keras model's name too
    window: int | None  # the input's time axis: a fixed window, or None for any length
    layers: tuple  # ScaledIds | Embedding | LSTM | Dropout | Head, input to output
    # Time steps run per generated token: the tutorial's model has no carried state, so it
    # reruns its whole window for each one (worker/sampling.py's WindowStepper).
    steps_per_token: int

    @property
    def parameters(self):
        return sum(layer.parameters for layer in self.layers)

    @property
    def lstm_units(self):
        return [layer.width for layer in self.layers if isinstance(layer, LSTM)]

    @property
    def token_flops(self):
        """Multiply-adds x 2 to generate one token of one sample. The tutorial's head runs
        once per window, but is counted at every step: the estimate errs high."""
        return self.steps_per_token * sum(layer.step_flops for layer in self.layers)


def describe(spec, vocab_size):
    """The Architecture of `spec` over `vocab_size` tokens. `spec`: a TrainSpec, or one
    stored as its model_dump() (a job record's, a model's config), validated here."""
    spec = TrainSpec.model_validate(spec)
    return _FAMILIES[spec.model.architecture](spec, vocab_size)


def _tutorial(spec, vocab_size):
    """Scaled ids, stacked LSTM, softmax over the next token after the window.

    The tutorial scales ids before the model; doing it inside feeds the LSTM the same values
    while the saved model takes plain ids. Its last LSTM has half the units (256, 256, 128
    in the `seed` preset) and alone returns the last step only; every LSTM has its dropout,
    even at rate 0 (the layers, and so the seeded initial weights, stay the tutorial's).
    """
    model, window = spec.model, spec.training.seq_length
    stack, width = [ScaledIds(vocab_size, window)], 1
    for i in range(1, model.layers + 1):
        last = i == model.layers
        units = max(1, model.units // 2) if last else model.units
        stack += [LSTM(lstm_name(i), width, units, every_step=not last),
                  Dropout(f"dropout_{i}", model.dropout)]
        width = units
    stack.append(Head(width, vocab_size, softmax=True))
    return Architecture(TUTORIAL, window, tuple(stack), steps_per_token=window)


def _embedding_lstm(spec, vocab_size):
    """Embedding, stacked LSTM returning every step, logits at every step. The time axis is
    free: trained on windows of seq_length, the model runs on any length."""
    model = spec.model
    stack, width = [Embedding(vocab_size, model.embedding_dim)], model.embedding_dim
    for i in range(1, model.layers + 1):
        stack.append(LSTM(lstm_name(i), width, model.units, every_step=True))
        if model.dropout > 0:
            stack.append(Dropout(f"dropout_{i}", model.dropout))
        width = model.units
    stack.append(Head(width, vocab_size, softmax=False))
    return Architecture(EMBEDDING_LSTM, None, tuple(stack), steps_per_token=1)


_FAMILIES = {TUTORIAL: _tutorial, EMBEDDING_LSTM: _embedding_lstm}
