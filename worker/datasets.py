"""Training and validation batches, streamed from the encoded corpus.

Batches are cut from one int32 array of token ids on demand, so memory is O(corpus), never
corpus x window (the tutorial's own code materializes every window: 100x the corpus).

- `tutorial`: windows of `seq_length` with stride 1; x = the window's ids (the model scales
  them), y = the next id one-hot, shape (batch, vocab_size): n - seq_length windows.
- `embedding_lstm`: non-overlapping windows; x = ids[k*L:(k+1)*L], y = the same shifted by
  one, both (batch, L) int32: a target at every step.

Validation is the last `validation_fraction` of the ids, by position, so no validation window
overlaps a training one. Training windows are shuffled each epoch by a NumPy Generator
seeded from (seed, epoch): the same seed gives the same order on every run.
"""

import math

import keras
import numpy as np

from shared.errors import CorpusTooSmallError
from worker.models import TUTORIAL


class _Windows(keras.utils.PyDataset):
    """Windows starting at `starts` over `ids`, in batches of `batch_size`.

    The last batch may be partial. With `shuffle_seed` set, the window order is a fresh
    permutation per epoch; otherwise windows come in position order.
    """

    def __init__(self, ids, starts, batch_size, shuffle_seed=None):
        # workers=1 without multiprocessing: a batch is one fancy-indexing slice, cheaper
        # than a queue, and a single producer keeps the order deterministic.
        super().__init__(workers=1, use_multiprocessing=False)
        self.ids = ids
        self.starts = starts
        self.batch_size = batch_size
        self.shuffle_seed = shuffle_seed
        self._epochs_begun = 0
        self._order = self._order_for(epoch=0)

    def _order_for(self, epoch):
        if self.shuffle_seed is None:
            return self.starts
        rng = np.random.default_rng([self.shuffle_seed, epoch])
        return rng.permutation(self.starts)

    def on_epoch_begin(self):
        # Keras also calls on_epoch_end once before training starts (EpochIterator.reset),
        # so epochs are counted here, where each call is one real epoch.
        self._order = self._order_for(self._epochs_begun)
        self._epochs_begun += 1

    def __len__(self):
        return math.ceil(len(self.starts) / self.batch_size)

    def _batch_starts(self, index):
        return self._order[index * self.batch_size:(index + 1) * self.batch_size]


class TutorialWindows(_Windows):
    """x: (batch, seq_length) int32 ids; y: (batch, vocab_size) float32 one-hot next id."""

    def __init__(self, ids, seq_length, vocab_size, batch_size, shuffle_seed=None):
        starts = np.arange(len(ids) - seq_length, dtype=np.int64)
        super().__init__(ids, starts, batch_size, shuffle_seed)
        self._offsets = np.arange(seq_length)
        self.seq_length = seq_length
        self.vocab_size = vocab_size

    def __getitem__(self, index):
        starts = self._batch_starts(index)
        x = self.ids[starts[:, None] + self._offsets]
        y = np.zeros((len(starts), self.vocab_size), dtype=np.float32)
        y[np.arange(len(starts)), self.ids[starts + self.seq_length]] = 1.0
        return x, y


class ShiftedWindows(_Windows):
    """x, y: (batch, seq_length) int32; y is x shifted one character ahead."""

    def __init__(self, ids, seq_length, batch_size, shuffle_seed=None):
        # Window k needs ids up to k*L + L inclusive (its last target).
        count = (len(ids) - 1) // seq_length
        starts = np.arange(max(count, 0), dtype=np.int64) * seq_length
        super().__init__(ids, starts, batch_size, shuffle_seed)
        self._offsets = np.arange(seq_length)

    def __getitem__(self, index):
        idx = self._batch_starts(index)[:, None] + self._offsets
        return self.ids[idx], self.ids[idx + 1]


def make_datasets(ids, architecture, *, seq_length, batch_size, vocab_size,
                  validation_fraction, seed):
    """Return (train, validation or None) for the encoded corpus `ids` (int32).

    Raises CorpusTooSmallError when there is not one training window, or not one validation
    window although a validation split was asked for.
    """
    n_val = int(len(ids) * validation_fraction)
    train_ids, val_ids = ids[:len(ids) - n_val], ids[len(ids) - n_val:]

    def windows(part, shuffle_seed):
        if architecture == TUTORIAL:
            return TutorialWindows(part, seq_length, vocab_size, batch_size, shuffle_seed)
        return ShiftedWindows(part, seq_length, batch_size, shuffle_seed)

    train = windows(train_ids, seed)
    if len(train.starts) == 0:
        raise CorpusTooSmallError(
            f"the prepared text has {len(ids)} characters, {len(train_ids)} of them for "
            f"training; one training window needs at least {seq_length + 1}"
        )
    if validation_fraction == 0:
        return train, None
    validation = windows(val_ids, None)
    if len(validation.starts) == 0:
        raise CorpusTooSmallError(
            f"the validation split ({validation_fraction:g} of {len(ids)} characters) has "
            f"{len(val_ids)} characters; one validation window needs at least "
            f"{seq_length + 1}"
        )
    return train, validation
