"""The scratch cache: bounded, least recently used out, and safe to delete at any time."""

import os
import shutil
import time

from shared.stores.scratch_cache import ScratchCache


class Fetches:
    """fetch() for a key: 100 bytes, counting how often the store was asked."""

    def __init__(self):
        self.keys = []

    def __call__(self, key):
        def fetch():
            self.keys.append(key)
            return {"blob": key.encode().ljust(100, b".")}
        return fetch


def get(cache, fetches, key):
    return cache.entry("file:///store", key, fetches(key))


def test_keeps_the_most_recently_used_within_its_bound(tmp_path):
    cache, fetches = ScratchCache(tmp_path / "cache", max_bytes=250), Fetches()
    a = get(cache, fetches, "a")
    assert (a / "blob").read_bytes().startswith(b"a.")
    b = get(cache, fetches, "b")
    # File times tick coarsely (a few ms): say plainly that a was made before b.
    os.utime(a, (time.time() - 60, time.time() - 60))
    os.utime(b, (time.time() - 30, time.time() - 30))
    get(cache, fetches, "a")  # used again: now the most recent
    get(cache, fetches, "c")  # 300 bytes > 250: b, the least recently used, goes
    assert fetches.keys == ["a", "b", "c"]
    get(cache, fetches, "a")
    get(cache, fetches, "b")
    assert fetches.keys == ["a", "b", "c", "b"]
    assert len(list((tmp_path / "cache" / "entries").iterdir())) == 2


def test_deleting_it_while_in_use_costs_only_a_fetch(tmp_path):
    cache, fetches = ScratchCache(tmp_path / "cache"), Fetches()
    get(cache, fetches, "a")
    shutil.rmtree(tmp_path / "cache")
    assert (get(cache, fetches, "a") / "blob").is_file()
    assert fetches.keys == ["a", "a"]
    with cache.scratch_dir() as tmp:
        shutil.rmtree(tmp_path / "cache")  # under a write in progress, too
    with cache.scratch_dir() as tmp:
        assert tmp.is_dir()


def test_two_processes_filling_the_same_entry_both_get_it_whole(tmp_path):
    # Two workers on one host share the cache; the second to finish keeps the first's copy.
    first, second = ScratchCache(tmp_path / "cache"), ScratchCache(tmp_path / "cache")
    fetches = Fetches()
    entry = get(first, fetches, "a")

    def racing_fetch():
        shutil.rmtree(entry)  # as if evicted, then installed again by the other process
        get(first, fetches, "a")
        return {"blob": b"a".ljust(100, b".")}

    again = second.entry("file:///store", "a", racing_fetch)
    assert again == entry and (again / "blob").read_bytes().startswith(b"a.")
    assert not any((tmp_path / "cache" / "tmp").iterdir())
