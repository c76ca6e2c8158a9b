"""Every ``kgrec`` command shown in the README (and docs) exists with the options shown."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import typer

from kgrec.cli import app

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "docs" / "benchmarks.md", REPO / "notebooks" / "README.md"]


def documented_commands() -> list[tuple[str, str]]:
    """``(file, command line)`` for each ``kgrec ...`` line in a code block."""
    found = []
    for path in DOCS:
        if not path.exists():
            continue
        in_code = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_code = not in_code
                continue
            text = line.strip().removeprefix("$ ")
            match = re.search(r"(?:^|&& |\.venv/bin/)(kgrec .*)", text)
            if in_code and match:
                found.append((path.name, match.group(1).strip()))
    return found


def shell_words(line: str) -> list[str]:
    """The command's words, up to a comment, pipe or redirection."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = []
    for word in lexer:
        if word in ("|", ">", ">>", "&&"):
            break
        words.append(word)
    return words


def resolve(args: list[str]) -> tuple[Any, list[str]]:
    command: Any = typer.main.get_command(app)
    while hasattr(command, "get_command") and args and not args[0].startswith("-"):
        sub = command.get_command(click.Context(command), args[0])
        if sub is None:
            raise AssertionError(f"no command {args[0]!r}")
        command, args = sub, args[1:]
    return command, args


@pytest.mark.parametrize(("source", "line"), documented_commands())
def test_documented_command_exists_with_its_options(source: str, line: str) -> None:
    args = shell_words(line)[1:]
    command, rest = resolve(args)
    known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    known |= {"--help"}
    for token in rest:
        if token.startswith("-") and not re.fullmatch(r"-\d.*", token):
            assert token.split("=")[0] in known, f"{source}: {line!r}: unknown option {token}"


def test_the_readme_shows_commands() -> None:
    names = {line.split()[1] for _, line in documented_commands() if len(line.split()) > 1}
    assert {"build-graph", "train", "evaluate", "recommend", "explain", "cypher"} <= names
