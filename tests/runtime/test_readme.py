"""The README keeps its promises: the two commands first, and every setting with its default."""

from __future__ import annotations

from pathlib import Path

from adapters.runtime.settings import SETTINGS, configuration_markdown

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")


def test_readme_starts_with_the_two_commands() -> None:
    block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make serve", "make test"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text("utf-8").strip().splitlines()
    assert ci[-1] == "make test"


def test_readme_settings_table_is_current() -> None:
    begin = README.index("<!-- settings:begin")
    table = README[README.index("\n", begin) + 1 : README.index("<!-- settings:end -->")]
    generated = configuration_markdown()
    start = generated.index("| Variable |")
    expected = generated[start:].split("\n\n")[0].rstrip() + "\n"
    assert table == expected, "regenerate the README settings table from configuration_markdown()"
    for setting in SETTINGS:
        assert f"`{setting.env}`" in table
