from worker.model_cache import ModelCache


def test_keeps_the_most_recently_used_models_loaded():
    loads = []

    def load(model_id):
        loads.append(model_id)
        return f"model {model_id}"

    cache = ModelCache(load, capacity=2)
    assert cache.get("a") == "model a"
    cache.get("b")
    cache.get("a")  # a burst of jobs on one model loads it once
    assert loads == ["a", "b"]
    cache.get("c")  # evicts b, the least recently used
    cache.get("a")
    cache.get("b")
    assert loads == ["a", "b", "c", "b"]
