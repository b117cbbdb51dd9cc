"""The generated client token, kept across restarts in a private file beside the state.

Without ``KIRO_CLIENT_TOKEN`` a token is generated; a new one at every start would have every
client (Claude Code's ``ANTHROPIC_API_KEY``) reconfigured after each restart. The first start
writes it to a file only its owner may read (0600); later starts read it back:

* ``KIRO_STATE=sqlite:///path/state.db``: ``kiro2api-client-token`` in the database's directory;
* ``memory://`` and Redis (no local directory): ``$XDG_STATE_HOME/kiro2api/client-token``, by
  default ``~/.local/state/kiro2api/client-token`` (the directory made 0700).

Deleting the file gives a new token at the next start. The token is printed at start-up (to the
console only), never logged.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .settings import Settings

__all__ = ["TOKEN_FILE_NAME", "announce_generated_token", "client_token_path", "keep_generated_token"]

log = logging.getLogger("kiro2api.server")

#: The file's name beside a SQLite state file.
TOKEN_FILE_NAME = "kiro2api-client-token"


def client_token_path(state_url: str, environ: Mapping[str, str] = os.environ) -> Path:
    """Where the generated token of a gateway with state ``state_url`` is kept."""
    if state_url.startswith("sqlite://"):
        path = state_url[len("sqlite://"):]
        # sqlite:///relative.db and sqlite:////abs.db, as the store reads them.
        return Path(path[1:] or ".").parent / TOKEN_FILE_NAME
    base = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "kiro2api" / "client-token"


def keep_generated_token(settings: Settings, environ: Mapping[str, str] = os.environ) -> Settings:
    """``settings`` with the generated client token of an earlier start, or this one's kept for the next.

    Settings with a configured token come back unchanged. When the file cannot be read or
    written, the token of this run is used and a warning says why (it then changes at restart).
    """
    if not settings.client_token_generated:
        return settings
    path = client_token_path(settings.state_url, environ)
    try:
        kept = _read(path) or _write(path, settings.client_token)
    except OSError as exc:
        log.warning(
            "cannot keep the generated client token in %s (%s): it changes at every start; set KIRO_CLIENT_TOKEN",
            path,
            exc.strerror or type(exc).__name__,
        )
        return settings
    return dataclasses.replace(settings, client_token=kept)


def announce_generated_token(settings: Settings) -> None:
    """Print the generated token for the operator, to the console only (never to LOG_FILE: the
    operator needs it to connect; logs are kept and shipped). Nothing when a token was set."""
    if settings.client_token_generated:
        print(
            "kiro2api: KIRO_CLIENT_TOKEN is not set; clients must use this generated token (kept across restarts):\n"
            f"  {settings.client_token}",
            file=sys.stderr,
            flush=True,
        )


def _read(path: Path) -> str | None:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    # A file emptied or mangled by hand is replaced rather than trusted.
    return token if token and token.isprintable() and not any(c.isspace() for c in token) else None


def _write(path: Path, token: str) -> str:
    """Keep ``token`` at ``path``; the token kept there (another gateway starting at once may win)."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written under another name, then linked into place: the file is private from its first
    # byte (the mode is given at creation), a reader never sees half a token, and of two
    # gateways starting at once the first keeps its token and the second reads it.
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    try:
        os.link(partial, path)
    except FileExistsError:
        # Replaced only when unusable (emptied or mangled by hand).
        kept = _read(path)
        if kept is not None:
            return kept
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return token
