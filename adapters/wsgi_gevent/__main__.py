"""``python -m adapters.wsgi_gevent [--host H] [--port N] [--env-file PATH]``: serve on gevent.

The only place kiro2api monkey-patches: ``main()`` patches first, then imports the server.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn


def main(argv: Sequence[str] | None = None) -> int:
    """Patch the standard library for gevent, then run the pywsgi server until SIGTERM/SIGINT."""
    from gevent import monkey

    monkey.patch_all()
    from ._serve import main as serve_main

    return serve_main(argv)


def exec_server(argv: Sequence[str]) -> NoReturn:
    """Replace this process by ``python -m adapters.wsgi_gevent ARGV`` (for ``kiro2api serve --adapter gevent``).

    A fresh interpreter, so that gevent patches before anything (ssl, threading) is imported.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "adapters.wsgi_gevent", *argv])


if __name__ == "__main__":
    sys.exit(main())
