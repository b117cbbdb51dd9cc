"""The ``kiro2api`` command line: a composition root.

``kiro2api serve`` decides what answers for Kiro: the configured accounts, or the built-in
simulator when there are none (``adapters/compose.py``); the servers themselves never decide.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kiro_protocol import __version__

_DESCRIPTION = "A gateway that serves the Anthropic Messages and OpenAI Chat Completions APIs from Kiro accounts."


def _settings_epilog() -> str:
    from adapters.runtime.command_line import settings_epilog

    return settings_epilog()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiro2api",
        description=_DESCRIPTION,
        epilog=(
            "commands:\n  serve        run the standalone server (kiro2api serve --help)\n"
            "  simulator    run the upstream simulator, a stand-in for Kiro (kiro2api simulator --help)\n"
            "  keys         manage named client keys in KIRO_STATE (kiro2api keys --help)\n"
            "  usage        usage per key, account, model or day (kiro2api usage --help)\n\n"
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
    from adapters.runtime.command_line import add_serve_arguments

    add_serve_arguments(serve)
    serve.add_argument(
        "--workers",
        help="server processes sharing the port: a number, or auto for one per core (overrides WORKERS; default 1)",
    )
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
    keys = sub.add_parser(
        "keys",
        help="manage named client keys (add, list, disable, enable, remove)",
        description="Manage the named client keys in KIRO_STATE; a running server sees changes within a second (docs/keys.md).",
    )
    from adapters.keys_command import add_keys_arguments

    add_keys_arguments(keys)
    usage = sub.add_parser(
        "usage",
        help="usage per key, account, model or day (from KIRO_STATE)",
        description="Sum the usage records of KIRO_STATE (docs/usage.md): requests, errors, tokens, credits, timings.",
    )
    from adapters.usage_command import add_arguments as add_usage_arguments

    add_usage_arguments(usage)
    return parser


def _serve(args: argparse.Namespace) -> int:
    if args.adapter == "gevent" and args.workers is not None:
        print("kiro2api: --workers is for the standalone server (--adapter anyio)", file=sys.stderr)
        return 2
    if args.adapter == "gevent":
        # A fresh interpreter: gevent must patch the standard library before anything imports it.
        from adapters.wsgi_gevent.__main__ import exec_server

        flags = (("host", args.host), ("port", args.port), ("env-file", args.env_file))
        exec_server([f"--{name}={value}" for name, value in flags if value is not None])
    from adapters.anyio_server import run
    from adapters.compose import serve_gateway
    from adapters.runtime.command_line import settings_from_arguments

    settings = settings_from_arguments(args)
    return 2 if settings is None else run(settings, serve_gateway)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "usage":
        from adapters.usage_command import run as run_usage

        return run_usage(args)
    if args.command == "keys":
        from adapters.keys_command import run_keys

        return run_keys(args)
    if args.command == "simulator":
        from adapters.simulator import run_from_args

        return run_from_args(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
