"""Training and validation batches, streamed from the encoded corpus.

Batches are cut from one int32 array of token ids on demand, so memory is O(corpus), never
corpus x window (the tutorial's own code materializes every window: 100x the corpus).

- `tutorial`: windows of `seq_length` with stride 1; x = the window's ids (the model scales
  them), y = the next id one-hot, shape (batch, vocab_size): n - seq_length windows.
- `embedding_lstm`: non-overlapping windows; x = ids[k*L:(k+1)*L], y = the same shifted by
  one, both (batch, L) int32: a target at every step.

Validation is the last `validation_fraction` of the ids, by position, so no validation window
overlaps a training one, and is one pass in position order. Training is an endless stream
of epochs, each a permutation of the windows drawn by a NumPy Generator seeded from (seed,
epoch), starting at epoch `first_epoch`: the same seed gives the same batches on every run,
and a run resumed at epoch e gets the batches an uninterrupted run would. fit() is given
steps_per_epoch=batches_per_epoch and shuffle=False.

Why endless, not a permutation redrawn in PyDataset.on_epoch_begin: Keras' TF backend
prefetches the next epoch's first batches before it calls on_epoch_begin, and with
shuffle=True it reorders a finite PyDataset's batches with Python's global `random`; either
way the batches would depend on more than (seed, epoch). Here batch k is a pure function of
k: batch k % batches_per_epoch of epoch first_epoch + k // batches_per_epoch.
"""

import math

import keras
import numpy as np

from shared.contracts.errors import CorpusTooSmallError
from worker.models import TUTORIAL


class _Windows(keras.utils.PyDataset):
    """Windows starting at `starts` over `ids`, in batches of `batch_size`; the last batch
    of an epoch may be partial.

    With `shuffle_seed`: the endless training stream of the module docstring, from epoch
    `first_epoch` (0-based: Keras' initial_epoch). Without: one pass in position order.
    """

    def __init__(self, ids, starts, batch_size, shuffle_seed=None, first_epoch=0):
        # workers=1 without multiprocessing: a batch is one fancy-indexing slice, cheaper
        # than a queue.
        super().__init__(workers=1, use_multiprocessing=False)
        self.ids = ids
        self.starts = starts
        self.batch_size = batch_size
        self.shuffle_seed = shuffle_seed
        self.first_epoch = first_epoch
        self.batches_per_epoch = math.ceil(len(starts) / batch_size)
        self._permutation = (None, None)  # (epoch, its window order): the last one drawn

    @property
    def num_batches(self):
        """Keras' length of the dataset: None for the endless training stream."""
        return None if self.shuffle_seed is not None else self.batches_per_epoch

    def order(self, epoch):
        """Window starts in epoch `epoch`'s order (0-based)."""
        if self.shuffle_seed is None:
            return self.starts
        cached_epoch, order = self._permutation
        if cached_epoch != epoch:
            order = np.random.default_rng([self.shuffle_seed, epoch]).permutation(self.starts)
            self._permutation = (epoch, order)  # one assignment: safe for a reader thread
        return order

    def _batch_starts(self, index):
        epoch, index = divmod(index, self.batches_per_epoch)
        order = self.order(self.first_epoch + epoch)
        return order[index * self.batch_size:(index + 1) * self.batch_size]


class TutorialWindows(_Windows):
    """x: (batch, seq_length) int32 ids; y: (batch, vocab_size) float32 one-hot next id."""

    def __init__(self, ids, seq_length, vocab_size, batch_size, shuffle_seed=None,
                 first_epoch=0):
        starts = np.arange(len(ids) - seq_length, dtype=np.int64)
        super().__init__(ids, starts, batch_size, shuffle_seed, first_epoch)
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
    """x, y: (batch, seq_length) int32; y is x shifted one token ahead."""

    def __init__(self, ids, seq_length, batch_size, shuffle_seed=None, first_epoch=0):
        # Window k needs ids up to k*L + L inclusive (its last target).
        count = (len(ids) - 1) // seq_length
        starts = np.arange(max(count, 0), dtype=np.int64) * seq_length
        super().__init__(ids, starts, batch_size, shuffle_seed, first_epoch)
        self._offsets = np.arange(seq_length)

    def __getitem__(self, index):
        idx = self._batch_starts(index)[:, None] + self._offsets
        return self.ids[idx], self.ids[idx + 1]


def make_datasets(ids, architecture, *, seq_length, batch_size, vocab_size,
                  validation_fraction, seed, first_epoch=0, unit="characters"):
    """Return (train, validation or None) for the encoded corpus `ids` (int32).

    `first_epoch`: the 0-based epoch training starts at (a resumed run's initial_epoch).
    `unit`: what a token is, for error messages ("characters" or "tokens").
    Raises CorpusTooSmallError when there is not one training window, or not one validation
    window although a validation split was asked for.
    """
    n_val = int(len(ids) * validation_fraction)
    train_ids, val_ids = ids[:len(ids) - n_val], ids[len(ids) - n_val:]

    def windows(part, shuffle_seed, first_epoch=0):
        if architecture == TUTORIAL:
            return TutorialWindows(part, seq_length, vocab_size, batch_size, shuffle_seed,
                                   first_epoch)
        return ShiftedWindows(part, seq_length, batch_size, shuffle_seed, first_epoch)

    train = windows(train_ids, seed, first_epoch)
    if len(train.starts) == 0:
        raise CorpusTooSmallError(
            f"the prepared text has {len(ids)} {unit}, {len(train_ids)} of them for "
            f"training; one training window needs at least {seq_length + 1}"
        )
    if validation_fraction == 0:
        return train, None
    validation = windows(val_ids, None)
    if len(validation.starts) == 0:
        raise CorpusTooSmallError(
            f"the validation split ({validation_fraction:g} of {len(ids)} {unit}) has "
            f"{len(val_ids)} {unit}; one validation window needs at least "
            f"{seq_length + 1}"
        )
    return train, validation
