"""A request that holds its connection open (an event stream, `Prefer: wait`) holds one of
its owner's slots (shared/stores/owner_slots.py) until it ends, renewing it as it goes."""

import time

from api.auth import current_owner
from api.context import services, stream_slots
from shared.contracts.errors import TooManyStreamsError
from shared.stores.owner_slots import RENEW_S


class HeldSlot:
    def __init__(self, slots, owner, slot):
        self.slots = slots
        self.owner = owner
        self.slot = slot
        self.renewed = time.monotonic()

    def renew_if_due(self):
        if time.monotonic() - self.renewed >= RENEW_S:
            self.slots.renew(self.owner, self.slot)
            self.renewed = time.monotonic()

    def release(self):
        if self.slot is not None:
            self.slots.release(self.owner, self.slot)
            self.slot = None


def take_slot(refuse=True):
    """The caller's slot; over the cap, TooManyStreamsError (429) when `refuse`, else None."""
    owner, cap = current_owner(), services().settings.max_streams_per_owner
    slot = stream_slots().take(owner, cap)
    if slot is not None:
        return HeldSlot(stream_slots(), owner, slot)
    if refuse:
        raise TooManyStreamsError(
            f"{owner} already holds {cap} event streams and waits open "
            "(TEXTGEN_MAX_STREAMS_PER_OWNER); close one, or poll instead",
            headers={"Retry-After": str(int(RENEW_S))})
    return None
