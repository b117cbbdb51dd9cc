"""``python -m adapters.anyio_server [--host H] [--port P] [--env-file F]``: the standalone server alone.

Unlike ``kiro2api serve`` (``adapters/cli.py``, the composition root), it never starts the
built-in simulator: without accounts, model requests are answered 503 and the start-up log says so.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from adapters.runtime.command_line import parse_serve_command

from ._main import run


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_serve_command(
        argv,
        prog="python -m adapters.anyio_server",
        description="Serve kiro2api on the standalone h11/h2 server, without the simulator fallback of kiro2api serve.",
        docs="docs/server.md",
    )
    return 2 if settings is None else run(settings)


if __name__ == "__main__":
    sys.exit(main())
