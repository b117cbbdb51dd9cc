"""The ``kiro2api`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kiro_protocol import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiro2api",
        description="A gateway that serves the Anthropic Messages and OpenAI Chat Completions APIs from Kiro accounts.",
    )
    parser.add_argument("--version", action="version", version=f"kiro2api {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the standalone server")
    serve.add_argument("--host", help="address to bind (default: HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: PORT, else 8080)")
    serve.add_argument("--env-file", help="read settings from this file instead of ./.env")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "serve":
        print("kiro2api: the server is not built yet (see the open issues).", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
