"""README stays true: every command, exit code and quick-start path it names exists."""

from __future__ import annotations

import re

import pytest

from tlslog import errors
from tlslog.cli import app

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_documented(command):
    assert f"`tlslog {command}`" in README


@pytest.mark.parametrize("name", [n for n in dir(errors) if n.startswith("EXIT_")])
def test_every_exit_code_is_documented(name):
    code = getattr(errors, name)
    assert re.search(rf"^\| {code} \|", README, re.MULTILINE), name


def test_quick_start_paths_exist():
    for path in re.findall(r"(sample_logs/\S+/maillog)", README):
        assert (ROOT / path).exists(), path


def test_ci_runs_the_readme_test_command():
    command = re.search(r"Then run the tests:\n\n```sh\n(.+)\n```", README).group(1)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.rstrip().splitlines()[-1] == command
