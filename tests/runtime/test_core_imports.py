"""The core stays Sans-IO transitively: importing every module of kiro_protocol in a fresh
interpreter loads no IO module (the per-module rule is tests/core/test_no_io.py; this check
starts a process, so it cannot run in the pure tier)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import kiro_protocol

CORE = Path(kiro_protocol.__file__).parent


def test_importing_the_core_pulls_in_no_io_module() -> None:
    """Transitively, too: import every core module in a fresh interpreter and look at what came
    along (catches IO hidden behind an innocent-looking stdlib import)."""
    modules = [m.name for m in pkgutil.walk_packages([str(CORE)], prefix="kiro_protocol.")]
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"for m in {modules!r} + ['kiro_protocol']:\n"
        "    __import__(m)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    # Modules the interpreter itself always has are excluded by the "before" snapshot; whatever
    # the core newly loads must not be an IO module.
    io_like = {
        "socket", "ssl", "asyncio", "anyio", "trio", "gevent", "threading", "httpx", "httpcore",
        "h11", "h2", "sqlite3", "redis", "subprocess", "selectors", "urllib.request",
        "http.client", "logging", "random", "secrets",
    }
    bad = sorted(m for m in loaded if m in io_like)
    assert not bad, f"importing kiro_protocol loads IO modules: {bad}"
