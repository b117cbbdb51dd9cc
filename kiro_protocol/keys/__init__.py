"""Named client keys: the stored record, how a key is made, and what its limits decide.

This module is the public API of ``kiro_protocol.keys``; its modules are private. The front door
(``http/``) authenticates with these records; docs/keys.md describes the whole feature.
"""

from ._limits import (
    KeyCounts,
    KeyLimitError,
    QuotaPeriods,
    KEY_RATE_WINDOW,
    key_admission,
    model_allowed,
    model_refusal,
    quota_periods,
)
from ._record import (
    BUILTIN_KEY_NAME,
    KEY_PREFIX,
    ClientKey,
    KeyLimits,
    check_key_name,
    format_time,
    key_digest,
    make_client_key,
    parse_expiry,
    parse_models,
)

__all__ = [
    "BUILTIN_KEY_NAME",
    "KEY_PREFIX",
    "ClientKey",
    "KeyLimits",
    "check_key_name",
    "format_time",
    "key_digest",
    "make_client_key",
    "parse_expiry",
    "parse_models",
    "KEY_RATE_WINDOW",
    "KeyCounts",
    "KeyLimitError",
    "QuotaPeriods",
    "key_admission",
    "model_allowed",
    "model_refusal",
    "quota_periods",
]
