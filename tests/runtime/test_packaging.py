"""``make serve`` installs what serving needs, not the development set; the build has no deprecation warning."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_license_is_an_spdx_string_read_by_a_setuptools_that_knows_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # The table form ({text = ...}) made setuptools 77+ print a deprecation warning at every build step.
    assert project["project"]["license"] == "MIT"
    requires = project["build-system"]["requires"]
    (setuptools,) = [r for r in requires if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools)
    assert minimum is not None and int(minimum.group(1)) >= 77


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_serve_installs_the_server_extras_only(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    serve = subprocess.run(["make", "-n", "serve"], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True)
    installs = [line for line in serve.stdout.splitlines() if "pip install" in line and "-e" in line]
    assert installs and all("[dev" not in line and "server" in line for line in installs), serve.stdout
    assert ".installed-serve-stamp" in serve.stdout
    # make test still installs the development set (and it counts for serve too).
    test = subprocess.run(["make", "-n", "test"], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True)
    assert "-e '.[dev]'" in test.stdout and ".installed-serve-stamp" in test.stdout
