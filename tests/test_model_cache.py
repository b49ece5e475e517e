from worker.model_cache import ModelCache


def test_keeps_the_most_recently_used_models_loaded():
    loads = []

    def load(model_id):
        loads.append(model_id)
        return f"model {model_id}"

    cache = ModelCache(load, max_models=2, size_of=len)
    assert cache.get("a") == "model a"
    cache.get("b")
    cache.get("a")  # a burst of jobs on one model loads it once
    assert loads == ["a", "b"]
    cache.get("c")  # evicts b, the least recently used
    cache.get("a")
    cache.get("b")
    assert loads == ["a", "b", "c", "b"]


def test_is_bounded_by_the_models_bytes_and_keeps_the_last_one():
    loads = []

    def load(model_id):
        loads.append(model_id)
        return model_id

    cache = ModelCache(load, max_bytes=10, size_of=len)
    cache.get("aaaa")
    cache.get("bbbb")
    cache.get("aaaa")
    assert loads == ["aaaa", "bbbb"]  # 8 bytes: both kept
    cache.get("cccc")  # 12 bytes: the least recently used goes
    cache.get("aaaa")
    assert loads == ["aaaa", "bbbb", "cccc"]
    assert cache.get("x" * 20) == "x" * 20  # larger than the budget: kept alone
    cache.get("x" * 20)
    assert loads[-1] == "x" * 20 and loads.count("x" * 20) == 1
