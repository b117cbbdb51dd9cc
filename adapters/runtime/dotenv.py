"""A small ``.env`` reader (the subset every dotenv dialect agrees on).

Lines are ``NAME=value`` with an optional ``export`` prefix. Blank lines and lines starting with
``#`` are skipped. Values may be quoted: ``"..."`` understands ``\\n``, ``\\t``, ``\\"`` and
``\\\\``; ``'...'`` is literal. An unquoted value ends at `` #`` (an inline comment) and is
stripped. No variable expansion: a ``$`` is just a character, so a secret containing one is
read as written.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["DotenvError", "parse_dotenv", "read_dotenv"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class DotenvError(ValueError):
    """A line of a ``.env`` file cannot be read; the message names the file and line."""


def _unquote_double(body: str) -> str:
    out: list[str] = []
    it = iter(body)
    for ch in it:
        if ch == "\\":
            nxt = next(it, "")
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
        else:
            out.append(ch)
    return "".join(out)


def _closing_quote(text: str, quote: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\" and quote == '"':
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


def parse_dotenv(text: str, *, source: str = ".env") -> dict[str, str]:
    """Parse ``.env`` text into a dict (a later line wins over an earlier one).

    Raises:
        DotenvError: a line that is not ``NAME=value``, or an unterminated quote. The message
            gives the line number but never the value, which may be a secret.
    """
    result: dict[str, str] = {}
    # Only \n (and \r\n) end a line: str.splitlines() would also split on U+2028, \x1e...
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        name, eq, rest = line.partition("=")
        name = name.strip()
        if not eq or not _NAME.fullmatch(name):
            raise DotenvError(f"{source}:{lineno}: expected NAME=value")
        rest = rest.strip()
        if rest[:1] in ('"', "'"):
            quote = rest[0]
            # A quoted value may span lines (PEM blocks, pretty-printed JSON).
            while (end := _closing_quote(rest, quote)) < 0:
                if i >= len(lines):
                    raise DotenvError(f"{source}:{lineno}: unterminated {quote} quote for {name}")
                rest += "\n" + lines[i]
                i += 1
            body = rest[1:end]
            trailing = rest[end + 1 :].strip()
            if trailing and not trailing.startswith("#"):
                raise DotenvError(f"{source}:{lineno}: unexpected text after the quoted value of {name}")
            value = _unquote_double(body) if quote == '"' else body
        else:
            cut = rest.find(" #")
            value = (rest[:cut] if cut >= 0 else rest).strip()
        result[name] = value
    return result


def read_dotenv(path: str | Path) -> dict[str, str]:
    """Read and parse the ``.env`` file at ``path`` (UTF-8, a BOM tolerated)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    return parse_dotenv(text, source=str(path))
