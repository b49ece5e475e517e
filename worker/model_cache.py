"""A small LRU of loaded models, so generation jobs on a model load it once.

Fair turns (shared/stores/scheduler.py) alternate between owners, so consecutive generation jobs
often use different models: the cache must hold every model of a busy period, not just a
burst's. It is bounded by count and by weight bytes; the last model loaded always stays.
"""

import collections
import threading

# Models kept: the owners served in turn on a busy generate queue (bench/load.py's
# fairness run alternates between 20); each costs its weights and a few MB of Keras
# objects and traced functions.
MAX_MODELS = 32
# Their float32 weights, in bytes: a 2x128 character model is ~0.8 MB, the tutorial's
# 3x256 ~2.5 MB, so only the largest models the API accepts crowd each other out.
MAX_BYTES = 256 * 1024 * 1024


def weight_bytes(loaded):
    return loaded.model.count_params() * 4


class ModelCache:
    def __init__(self, load, max_models=MAX_MODELS, max_bytes=MAX_BYTES, size_of=weight_bytes):
        self._load = load  # model_id -> loaded model
        self._max_models = max_models
        self._max_bytes = max_bytes
        self._size_of = size_of
        self._items = collections.OrderedDict()  # model_id -> (loaded, bytes), oldest first
        self._lock = threading.Lock()

    def get(self, model_id):
        with self._lock:
            if model_id in self._items:
                self._items.move_to_end(model_id)
                return self._items[model_id][0]
        loaded = self._load(model_id)
        with self._lock:
            self._items[model_id] = (loaded, self._size_of(loaded))
            self._items.move_to_end(model_id)
            while len(self._items) > 1 and (
                    len(self._items) > self._max_models
                    or sum(size for _, size in self._items.values()) > self._max_bytes):
                self._items.popitem(last=False)
        return loaded
