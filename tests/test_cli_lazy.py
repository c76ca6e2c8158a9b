"""The command registry: ``--help`` imports no command module, and lists what the commands say."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import typer
from typer.core import TyperCommand
from typer.main import get_command, get_command_name

from kgrec.cli.apps import COMMANDS, CYPHER_COMMANDS, DB_COMMANDS, app, cypher_app, db_app
from kgrec.cli.lazy import Lazy

GROUPS: dict[str, tuple[typer.Typer, dict[str, Lazy]]] = {
    "kgrec": (app, COMMANDS),
    "kgrec db": (db_app, DB_COMMANDS),
    "kgrec cypher": (cypher_app, CYPHER_COMMANDS),
}


@pytest.mark.parametrize("args", [["--help"], ["db", "--help"], ["cypher"]])
def test_help_imports_no_command_module(args: list[str]) -> None:
    code = (
        "import sys\nfrom kgrec.cli import app\ntry:\n"
        f"    app({args!r})\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('kgrec.cli.', 'torch', 'pandas',"
        " 'rich', 'redis'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Commands:" in done.stdout + done.stderr  # no arguments: help on stderr
    assert done.stdout.strip().splitlines()[-1] == "['kgrec.cli.apps', 'kgrec.cli.lazy']"


@pytest.mark.parametrize("group", GROUPS)
def test_every_command_is_registered_with_its_own_help(group: str) -> None:
    """The registry names every command its modules define, with the first sentence of the
    command's help, so ``--help`` reads the same whether a command is loaded or not."""
    typer_app, lazy = GROUPS[group]
    for entry in lazy.values():
        importlib.import_module(entry.module)
    defined = {
        info.name or get_command_name(info.callback.__name__)  # type: ignore[union-attr]
        for info in typer_app.registered_commands
    }
    assert defined == set(lazy)
    click_group = get_command(typer_app)
    with typer.Context(click_group) as ctx:
        for name, entry in lazy.items():
            command = click_group.get_command(ctx, name)  # type: ignore[attr-defined]
            assert command is not None, name
            stub = TyperCommand(name=name, help=entry.help)
            for limit in (40, 74, 1000):
                assert stub.get_short_help_str(limit) == command.get_short_help_str(limit), name


def test_a_command_loads_only_its_module() -> None:
    code = (
        "import sys\nfrom kgrec.cli import app\ntry:\n"
        "    app(['cypher', 'list', '-f', 'csv'])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(sorted(m for m in sys.modules if m.startswith(('kgrec.cli.', 'torch'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "['kgrec.cli.apps', 'kgrec.cli.common', 'kgrec.cli.graph', 'kgrec.cli.lazy']"
