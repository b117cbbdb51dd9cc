"""``python -m adapters.simulator [--host H] [--port N] ...``: same as ``kiro2api simulator``."""

import sys

from adapters.simulator import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
