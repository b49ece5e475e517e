"""A download served by the API holds one of its owner's download slots
(TEXTGEN_MAX_DOWNLOADS_PER_OWNER; shared/stores/owner_slots.py) from its first byte to
its last, or until its client hangs up; one more is a 429.

A file goes out by sendfile, with no Python code running between its first byte and its
last, so a download cannot renew its own slot as an event stream does: one thread a
process renews every slot the process holds, every RENEW_S, and the slots of a process
that died expire with it. A slot is released when the server is done with the response's body
(api/after_body.py: after the last byte, a client's hang-up or an error alike).
"""

import functools
import logging
import threading
import time

import redis
from api.after_body import call_after_body
from api.auth import current_owner
from api.context import download_slots, services
from shared.contracts.errors import TooManyDownloadsError
from shared.stores.owner_slots import RENEW_S

log = logging.getLogger(__name__)

# A refused client's wait: a 500 MB model takes seconds to download (bench/README.md).
RETRY_AFTER_S = 5


class DownloadSlots:
    """This process's download slots: taken, renewed while held, released."""

    def __init__(self, slots, renew_s=RENEW_S):
        self.slots = slots  # an OwnerSlots on Keys.download_slots
        self.renew_s = renew_s
        self._lock = threading.Lock()
        self._held = set()  # (owner, slot) of this process's downloads under way
        self._renewer = None

    def take(self, owner, cap):
        """A slot, or None when the owner has `cap` downloads going already."""
        slot = self.slots.take(owner, cap)
        if slot is not None:
            with self._lock:
                self._held.add((owner, slot))
                if self._renewer is None:  # started here, not at import: after gunicorn forks
                    self._renewer = threading.Thread(target=self._renew, daemon=True,
                                                     name="download-slots")
                    self._renewer.start()
        return slot

    def release(self, owner, slot):
        # Under the lock: a renewal (which takes an expired slot again) never revives it.
        with self._lock:
            self._held.discard((owner, slot))
            self.slots.release(owner, slot)

    def _renew(self):
        while True:
            time.sleep(self.renew_s)
            with self._lock:
                try:
                    for owner, slot in self._held:
                        self.slots.renew(owner, slot)
                except redis.RedisError as e:  # renewed next time; 3 misses free the slot
                    log.warning("download slots not renewed: %s", e)


def hold_download():
    """Take one of the caller's download slots for this request, released once the server
    is done with its body; over the cap, TooManyDownloadsError (429)."""
    owner, cap = current_owner(), services().settings.max_downloads_per_owner
    slot = download_slots().take(owner, cap)
    if slot is None:
        raise TooManyDownloadsError(
            f"{owner} already has {cap} downloads going (TEXTGEN_MAX_DOWNLOADS_PER_OWNER); "
            "retry when one has ended", headers={"Retry-After": str(RETRY_AFTER_S)})
    call_after_body(functools.partial(download_slots().release, owner, slot))
