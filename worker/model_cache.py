"""A small LRU of loaded models, so a burst of generation jobs loads each model once."""

import collections
import threading


class ModelCache:
    def __init__(self, load, capacity=4):
        self._load = load  # model_id -> loaded model
        self._capacity = capacity  # a 256-unit char model is a few MB; 4 is plenty
        self._items = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id):
        with self._lock:
            if model_id in self._items:
                self._items.move_to_end(model_id)
                return self._items[model_id]
        loaded = self._load(model_id)
        with self._lock:
            self._items[model_id] = loaded
            self._items.move_to_end(model_id)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return loaded
