"""Random ids for requests, calls and conversations.

``uuid.uuid4()`` builds a ``UUID`` object (a Python ``__init__`` checking its arguments) from
a system call's random bytes for every id; a request takes five, about 10 us of the gateway's
CPU. These ids name things, they guard nothing (no secret is made here: client keys and
tokens come from ``secrets``), so they come from ``random``'s generator, which CPython seeds
afresh from the system in every process, forked workers included.
"""

from __future__ import annotations

import random

from kiro_protocol import uuid4_text

__all__ = ["random_hex", "random_uuid"]


def random_hex() -> str:
    """128 random bits as 32 lower-case hex digits (the length of ``uuid4().hex``)."""
    return f"{random.getrandbits(128):032x}"


def random_uuid() -> str:
    """A random (version 4, RFC 9562) UUID in its canonical text form, as ``str(uuid4())``."""
    return uuid4_text(random.getrandbits(128).to_bytes(16, "big"))
