"""The runtime's random ids (adapters/runtime/ids.py) have the shape of uuid4's."""

from __future__ import annotations

import re
import uuid

from adapters.runtime.ids import random_hex, random_uuid


def test_random_uuid_is_a_version_4_uuid_in_canonical_form() -> None:
    values = {random_uuid() for _ in range(200)}
    assert len(values) == 200
    for value in values:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_random_hex_is_32_hex_digits() -> None:
    values = {random_hex() for _ in range(200)}
    assert len(values) == 200 and all(re.fullmatch(r"[0-9a-f]{32}", v) for v in values)
