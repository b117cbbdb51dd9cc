"""Which adapter package may import which: the simulator is started by composition roots only.

The servers and adapters are handed settings that point at the simulator; they never import it
(nor ``adapters.compose``, which does). The simulator uses the standalone server to listen, as a
user: nothing imports back. ``python -m adapters.anyio_server`` runs that server and nothing else.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ROOT / "adapters"

#: The app factories that decide, when no account is configured, that the simulator answers.
COMPOSITION_ROOTS = {"adapters/asgi/__init__.py", "adapters/wsgi_gevent/__init__.py"}

STARTS_THE_SIMULATOR = ("adapters.simulator", "adapters.compose", "adapters.cli")

#: package -> the packages its modules must not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "adapters/anyio_server": (*STARTS_THE_SIMULATOR, "adapters.wsgi_gevent", "adapters.asgi"),
    "adapters/asgi": (*STARTS_THE_SIMULATOR, "adapters.wsgi_gevent", "adapters.anyio_server"),
    "adapters/wsgi_gevent": (*STARTS_THE_SIMULATOR, "adapters.asgi", "adapters.anyio_server"),
    "adapters/runtime": (*STARTS_THE_SIMULATOR, "adapters.anyio_server", "adapters.asgi", "adapters.wsgi_gevent"),
    "adapters/simulator": ("adapters.compose", "adapters.cli", "adapters.asgi", "adapters.wsgi_gevent"),
}


def imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, anywhere in it (function-level imports too), made absolute."""
    relative = path.relative_to(ROOT).with_suffix("")
    package = list(relative.parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            yield module
            # ``from . import x`` may name a submodule.
            yield from (f"{module}.{alias.name}" for alias in node.names)


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name in COMPOSITION_ROOTS:
            continue
        for module in imported_modules(path):
            found += [f"{name} imports {module}" for banned in FORBIDDEN[package] if within(module, banned)]
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    assert (ROOT / package).is_dir()
    assert violations(package) == []


def test_the_checker_sees_relative_and_function_level_imports() -> None:
    module = ADAPTERS / "anyio_server" / "_main.py"
    assert "adapters.anyio_server._common" in set(imported_modules(module))
    assert "adapters.simulator" in set(imported_modules(ADAPTERS / "compose.py"))
    assert "adapters.compose" in set(imported_modules(ADAPTERS / "asgi" / "__init__.py"))


def test_the_composition_roots_exist_and_are_the_only_exceptions() -> None:
    for name in COMPOSITION_ROOTS:
        assert any(within(m, "adapters.compose") for m in imported_modules(ROOT / name)), name


def test_importing_the_servers_loads_no_simulator() -> None:
    code = (
        "import sys\n"
        "import adapters.anyio_server, adapters.anyio_server.__main__, adapters.asgi, adapters.wsgi_gevent._app\n"
        "import adapters.runtime.service, adapters.runtime._sync.service, adapters.runtime.command_line\n"
        "loaded = [m for m in ('adapters.simulator', 'adapters.compose', 'adapters.cli', 'gevent')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
