"""Random ids drawn from a pool of random bytes, cheap on a hot path: resource ids (version 4
UUIDs) and the request ids of the API."""

from __future__ import annotations

import os
import threading


class RandomPool:
    """Random bytes drawn from ``os.urandom`` in blocks, handed out 16 at a time.

    One ``os.urandom`` call per id would release the GIL on every request (a system call),
    letting any other thread of the process take it for up to the switch interval; one call per
    256 ids keeps the event loop's thread running. A forked child discards the block it
    inherited, so parent and child never hand out the same bytes.
    """

    __slots__ = ("_block", "_lock", "_offset")

    BLOCK = 16 * 256

    def __init__(self) -> None:
        self._block = b""
        self._offset = 0
        self._lock = threading.Lock()

    def discard(self) -> None:
        self._block = b""
        self._offset = 0
        self._lock = threading.Lock()

    def take16(self) -> bytes:
        with self._lock:
            offset = self._offset
            if offset >= len(self._block):
                self._block = os.urandom(self.BLOCK)
                offset = 0
            self._offset = offset + 16
            return self._block[offset : offset + 16]


_pool = RandomPool()
os.register_at_fork(after_in_child=_pool.discard)


def random16() -> bytes:
    """16 random bytes from the process's shared pool."""
    return _pool.take16()


def new_id() -> str:
    """A new resource id: a random (version 4) UUID, from the shared pool of random bytes
    (``uuid.uuid4()`` makes one system call per id, which releases the GIL on the event loop)."""
    raw = bytearray(random16())
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
