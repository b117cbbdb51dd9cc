"""The ``kiro2api`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from kiro_protocol import __version__

_DESCRIPTION = "A gateway that serves the Anthropic Messages and OpenAI Chat Completions APIs from Kiro accounts."


def _settings_epilog() -> str:
    from adapters.runtime.settings import settings_help

    return settings_help() + "\n\nEvery setting is described in docs/configuration.md."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiro2api",
        description=_DESCRIPTION,
        epilog=(
            "commands:\n  serve        run the standalone server (kiro2api serve --help)\n"
            "  simulator    run the upstream simulator, a stand-in for Kiro (kiro2api simulator --help)\n\n"
        )
        + _settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kiro2api {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the standalone server",
        description="Run the standalone server (HTTP/1.1 and HTTP/2; HTTPS when TLS_CERT_FILE/TLS_KEY_FILE are set).",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to bind (overrides HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (overrides PORT; default 8080)")
    serve.add_argument("--env-file", help="read settings from this file instead of ./.env")
    serve.add_argument(
        "--adapter",
        choices=("anyio", "gevent"),
        default="anyio",
        help="anyio: the standalone h11/h2 server (default); gevent: the WSGI app on gevent's pywsgi server",
    )
    simulator = sub.add_parser(
        "simulator",
        help="run the upstream simulator (a stand-in for Kiro)",
        description="Serve Kiro's endpoints on loopback with scripted answers (docs/simulator.md).",
    )
    from adapters.simulator import add_arguments

    add_arguments(simulator)
    return parser


def _serve(args: argparse.Namespace) -> int:
    if args.adapter == "gevent":
        # A fresh interpreter: gevent must patch the standard library before anything imports it.
        from adapters.wsgi_gevent.__main__ import exec_server

        flags = (("host", args.host), ("port", args.port), ("env-file", args.env_file))
        exec_server([f"--{name}={value}" for name, value in flags if value is not None])
    from adapters.runtime.logging import configure_logging
    from adapters.runtime.settings import SettingsError, load_settings

    overrides = {"HOST": args.host, "PORT": None if args.port is None else str(args.port)}
    try:
        settings = load_settings(environ=os.environ, env_file=args.env_file, overrides=overrides)
    except SettingsError as exc:
        print(f"kiro2api: {exc}", file=sys.stderr)
        return 2
    try:
        configure_logging(level=settings.log_level, fmt=settings.log_format, file=settings.log_file)
    except OSError as exc:
        print(f"kiro2api: LOG_FILE: cannot open {settings.log_file!r} ({exc.strerror or exc})", file=sys.stderr)
        return 2

    from adapters.anyio_server import run

    try:
        return run(settings)
    except OSError as exc:
        # Typically the port is taken or the address is not ours.
        print(f"kiro2api: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "simulator":
        from adapters.simulator import run_from_args

        return run_from_args(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
