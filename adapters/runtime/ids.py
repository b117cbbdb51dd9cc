"""Random ids for requests, calls and conversations.

``uuid.uuid4()`` builds a ``UUID`` object (a Python ``__init__`` checking its arguments) from
a system call's random bytes for every id; a request takes five, about 10 us of the gateway's
CPU. These ids name things, they guard nothing (no secret is made here: client keys and
tokens come from ``secrets``), so they come from ``random``'s generator, which CPython seeds
afresh from the system in every process, forked workers included.
"""

from __future__ import annotations

import random

__all__ = ["random_hex", "random_uuid"]


def random_hex() -> str:
    """128 random bits as 32 lower-case hex digits (the length of ``uuid4().hex``)."""
    return f"{random.getrandbits(128):032x}"


def random_uuid() -> str:
    """A random (version 4, RFC 9562) UUID in its canonical text form, as ``str(uuid4())``."""
    raw = bytearray(random.getrandbits(128).to_bytes(16, "big"))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC's variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
