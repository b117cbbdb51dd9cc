"""``python -m adapters.anyio_server [--host H] [--port P] [--env-file F]``: same as ``kiro2api serve``."""

import sys

from adapters.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
