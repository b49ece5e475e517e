"""bench.train_speed's "hoisted" rows: the `default` model's LSTM layers trained on a CPU
with their input projection hoisted out of the time loop. Not used by the product: with
the machine not saturated it ran 0.86x Keras' own loop (bench/README.md, issue 16, goal 0).

Keras' LSTM cell computes x_t @ W and h @ U at every step: two small products per step
and layer. Hoisted, x @ W + b is one product over the whole window, (batch x window,
input) @ (input, 4 units), which TF's two intra-op threads run near the machine's peak,
and the loop carries only h @ U (as PyTorch's CPU LSTM does; bench.train_speed measures
both). The gates are Keras' own arithmetic (i, f, c, o; the cell's activations).

Only the layer's inner loop is replaced, on the instance, for this process: the model
keeps Keras' built-in LSTM layers and their variables, so what is saved (checkpoints, the
model file) is the same any-length Keras file as before, and loads without custom code.
"""

import functools

from keras import layers, ops
from keras.src import backend  # keras.src.backend.rnn: the loop keras.layers.RNN runs


def hoist_input_projections(model):
    """Give every LSTM layer of `model` the hoisted inner loop, where it computes the same
    thing: no dropout inside the cell (ours apply Dropout layers between LSTMs), a bias."""
    for layer in model.layers:
        if (isinstance(layer, layers.LSTM) and not layer.cell.dropout
                and not layer.cell.recurrent_dropout and layer.cell.use_bias
                and not layer.go_backwards and not layer.unroll):
            layer.inner_loop = functools.partial(_hoisted_inner_loop, layer)
    return model


def _hoisted_inner_loop(layer, sequences, initial_state, mask, training=False):
    """keras.layers.LSTM.inner_loop's contract: (last output, outputs, final states)."""
    cell = layer.cell
    projected = ops.matmul(sequences, cell.kernel) + cell.bias  # (batch, time, 4 units)

    def step(z_t, states):
        h, c = states
        z = z_t + ops.matmul(h, cell.recurrent_kernel)
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = cell.recurrent_activation(f) * c + cell.recurrent_activation(i) * cell.activation(g)
        h = cell.recurrent_activation(o) * cell.activation(c)
        return h, [h, c]

    return backend.rnn(step, projected, list(initial_state), mask=mask,
                       input_length=projected.shape[1],
                       zero_output_for_mask=layer.zero_output_for_mask,
                       return_all_outputs=layer.return_sequences)
