"""Token-shaped text taken out of upstream text before it is quoted to a client or a log.

Kiro's error bodies hold no secret, but whatever upstream (or a proxy, or a fake standing in for
either) writes back is quoted in client errors: an upstream that echoed the request's
``Authorization`` header would hand the account's access token to the client. Defence in depth:
every quote of upstream text goes through ``redact``, which replaces by ``***``

* the values the caller knows to be secret (the account's tokens and client secret);
* ``Bearer``/``Basic`` credentials;
* the value after a secret-sounding name (``refreshToken":"...``, ``client_secret=...``,
  ``Authorization: ...``);
* JWT-shaped strings (``eyJ...``.``...``);
* long unbroken runs of token alphabet (base64, base64url, hex) mixing letters and digits: no
  word of an error message looks like that, and every Kiro token does.

What it keeps: ordinary words, UUIDs and request ids (shorter than a token run), model names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["redact", "MASK"]

#: What stands in for a redacted value.
MASK = "***"

# Known secrets shorter than this are not searched for: a one-letter "secret" would mask every
# occurrence of that letter (configured tokens are far longer; the parsers reject short ones).
_MIN_SECRET = 8

# ``Bearer`` or ``Basic`` before a credential-shaped word: one with a digit or punctuation in it,
# or a long one. Not before a plain word: Kiro says "The bearer token included in the request
# is invalid", and "Basic" is also a plan's name.
# The credential's alphabet is RFC 6750's token68.
_CREDENTIAL = r"(?:(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/-]{4,}=*|[A-Za-z]{20,})(?![A-Za-z0-9._~+/=-])"
_SCHEME = re.compile(rf"\b((?:Bearer|Basic)\s+){_CREDENTIAL}", re.IGNORECASE)

# A secret-sounding name (snake, camel or kebab case: ``refreshToken``, ``client_secret``,
# ``x-api-key``), its separator (JSON's ``": "``, a header's ``: ``, a form's ``=``), then the
# value up to a quote, a separator or white space.
_NAMED = re.compile(
    r"""(?P<name>\b[\w-]*?(?:token|secret|password|passwd|authorization|api[_-]?key|credentials?)\b)
        (?P<sep>["']?\s*[:=]\s*["']?)
        (?!\*\*\*)(?P<value>(?:(?:Bearer|Basic)\s+)?[^\s"',;&}\]]+)""",
    re.IGNORECASE | re.VERBOSE,
)

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?")

# 32+ characters of token alphabet with at least one letter and one digit. UUIDs (8-4-4-4-12) and
# the like break at their hyphens only when hyphens are excluded, so the run is measured twice:
# base64url with ``-`` counts only when 40 long (a UUID is 36).
_RUN = re.compile(r"(?<![A-Za-z0-9+/_=-])(?=[A-Za-z0-9+/_=-]*\d)(?=[A-Za-z0-9+/_=-]*[A-Za-z])[A-Za-z0-9+/_=-]{40,}")
_RUN_NO_DASH = re.compile(r"(?<![A-Za-z0-9+/_=])(?=[A-Za-z0-9+/_=]*\d)(?=[A-Za-z0-9+/_=]*[A-Za-z])[A-Za-z0-9+/_=]{32,}")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every token-shaped part replaced by ``***`` (see the module's docstring).

    Args:
        text: upstream text about to be quoted.
        secrets: values known to be secret (the account's access and refresh tokens, its client
            secret); each is masked wherever it occurs, whatever its shape. None and short values
            are skipped.
    """
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _SCHEME.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _NAMED.sub(lambda m: f"{m.group('name')}{m.group('sep')}{MASK}", text)
    text = _JWT.sub(MASK, text)
    text = _RUN.sub(MASK, text)
    return _RUN_NO_DASH.sub(MASK, text)
