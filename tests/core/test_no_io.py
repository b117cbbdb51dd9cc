"""The core stays Sans-IO: no module of kiro_protocol may import IO, read the environment or
a clock, or draw randomness (time and ids are inputs).

The transitive check (import the whole core in a fresh interpreter) starts a process, so it
lives in the runtime tier: tests/runtime/test_core_imports.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kiro_protocol

CORE = Path(kiro_protocol.__file__).parent

# Top-level modules that do IO, concurrency, logging output, clocks or randomness.
FORBIDDEN_MODULES = {
    "socket", "ssl", "select", "selectors", "asyncio", "anyio", "trio", "gevent", "threading",
    "_thread", "multiprocessing", "concurrent", "subprocess", "signal", "httpx", "httpcore",
    "httpcore2", "h11", "h2", "urllib3", "requests", "aiohttp", "sqlite3", "redis", "logging",
    "os", "io", "shutil", "tempfile", "pathlib", "glob", "time", "random", "secrets",
    "mmap", "fcntl", "pty", "tty", "termios", "ctypes", "builtins", "importlib", "sys",
}
FORBIDDEN_SUBMODULES = {"urllib.request", "http.client", "http.server", "email.utils"}
# Names whose *use* means IO, a clock, the environment or randomness even without an import.
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "compile", "__import__", "breakpoint"}
FORBIDDEN_ATTRIBUTES = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("uuid", "uuid1"), ("uuid", "uuid4"), ("os", "environ"), ("os", "getenv"), ("os", "urandom"),
}


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def violations(source: str, filename: str = "<core>") -> list[str]:
    """Every way ``source`` breaks the no-IO rule, one line each."""
    tree = ast.parse(source, filename=filename)
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside the core
                continue
            base = node.module or ""
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in FORBIDDEN_CALLS:
                problems.append(f"line {node.lineno}: calls {node.func.id}()")
            continue
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN_ATTRIBUTES:
                problems.append(f"line {node.lineno}: uses {node.value.id}.{node.attr}")
            continue
        else:
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN_MODULES or name in FORBIDDEN_SUBMODULES:
                problems.append(f"line {node.lineno}: imports {name}")
    return problems


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_module_has_no_io(path: Path) -> None:
    problems = violations(path.read_text("utf-8"), str(path))
    assert not problems, f"{path.name} breaks the no-IO rule:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "import asyncio.tasks",
        "from threading import Lock",
        "from urllib.request import urlopen",
        "import os\nx = os.environ['HOME']",
        "from datetime import datetime\nx = datetime.now()",
        "import time",
        "import uuid\nx = uuid.uuid4()",
        "open('state.db')",
        "import logging",
    ],
)
def test_checker_catches_a_violation(source: str) -> None:
    """The rule is not vacuous: each of these is flagged."""
    assert violations(source)


def test_checker_allows_pure_code() -> None:
    assert violations("import json, struct, zlib\nfrom . import _errors\nx = json.dumps({})") == []
