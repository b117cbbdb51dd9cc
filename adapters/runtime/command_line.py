"""The start shared by every serving command: ``--host/--port/--env-file``, the settings, the logging.

``kiro2api serve``, ``python -m adapters.anyio_server`` and ``python -m adapters.wsgi_gevent``
accept the same flags and refuse bad settings with the same messages and exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .client_token_file import keep_generated_token
from .logging import configure_logging
from .settings import Settings, SettingsError, load_settings, settings_help

__all__ = ["add_serve_arguments", "parse_serve_command", "settings_epilog", "settings_from_arguments"]

log = logging.getLogger("kiro2api.server")


def settings_epilog(where: str = "") -> str:
    """The ``--help`` text listing every setting; ``where`` adds a pointer to more documentation."""
    return settings_help() + "\n\nEvery setting is described in docs/configuration.md" + where + "."


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (overrides HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (overrides PORT; default 8080)")
    parser.add_argument("--env-file", help="read settings from this file instead of ./.env")


def settings_from_arguments(args: argparse.Namespace) -> Settings | None:
    """The settings with the flags applied, and kiro2api's logging installed; None (said on stderr): exit 2."""
    overrides = {
        "HOST": args.host,
        "PORT": None if args.port is None else str(args.port),
        # Only ``kiro2api serve`` has the flag.
        "WORKERS": getattr(args, "workers", None),
    }
    try:
        settings = load_settings(environ=os.environ, env_file=args.env_file, overrides=overrides)
    except SettingsError as exc:
        print(f"kiro2api: {exc}", file=sys.stderr)
        return None
    try:
        configure_logging(
            level=settings.log_level, fmt=settings.log_format, file=settings.log_file, console=settings.log_console
        )
    except OSError as exc:
        print(f"kiro2api: LOG_FILE: cannot open {settings.log_file!r} ({exc.strerror or exc})", file=sys.stderr)
        return None
    for notice in settings.notices:
        log.warning("%s", notice)
    # After the logging: a token that cannot be kept is said in the log.
    return keep_generated_token(settings)


def parse_serve_command(argv: Sequence[str] | None, *, prog: str, description: str, docs: str) -> Settings | None:
    """A whole ``python -m`` serving command's flags (``docs``: the page describing it); None: exit 2."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=settings_epilog(f"; this server is in {docs}"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_serve_arguments(parser)
    return settings_from_arguments(parser.parse_args(argv))
