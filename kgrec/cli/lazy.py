"""Typer groups whose commands' modules are imported only when a command is used.

Click's "lazily loading subcommands" pattern on Typer's group class: each group keeps a
registry of ``command name -> (module, one-line help)``. ``kgrec --help`` lists the commands
from that registry and imports none of them; ``kgrec recommend`` imports
:mod:`kgrec.cli.serve` alone. So a command module imports what its commands need at the
top (torch for ``train``) without slowing the others' start-up.

A command module registers its commands on the shared Typer app as usual
(``@app.command("name")``); adding a module is one registry line in :mod:`kgrec.cli.apps`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_command_name


@dataclass(frozen=True)
class Lazy:
    """Where a command is defined and the one-line help ``--help`` lists for it (the first
    sentence of its docstring; ``tests/test_cli.py`` checks they agree)."""

    module: str
    help: str


class LazyGroup(TyperGroup):
    """A Typer group that imports a command's module the first time the command is needed."""

    app: ClassVar[typer.Typer]
    lazy: ClassVar[dict[str, Lazy]]

    def list_commands(self, ctx: Any) -> list[str]:
        """The registered commands in registry order, then any others (sub-groups)."""
        return [*self.lazy, *(name for name in self.commands if name not in self.lazy)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.lazy:
            importlib.import_module(self.lazy[cmd_name].module)
            command = self._load(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def _load(self, name: str) -> Any:
        """The click command ``name`` that its module registered on :attr:`app`."""
        for info in self.app.registered_commands:
            assert info.callback is not None
            if (info.name or get_command_name(info.callback.__name__)) == name:
                return get_command_from_info(
                    info,
                    pretty_exceptions_short=self.app.pretty_exceptions_short,
                    rich_markup_mode=self.rich_markup_mode,
                )
        raise LookupError(f"{self.lazy[name].module} registers no command {name!r}")

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """List the commands with their one-line help, importing none that is not loaded."""
        listed = [
            (name, self.commands.get(name) or TyperCommand(name=name, help=self.lazy[name].help))
            for name in self.list_commands(ctx)
        ]
        listed = [(name, command) for name, command in listed if not command.hidden]
        if not listed:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in listed)
        with formatter.section("Commands"):
            formatter.write_dl(
                [(name, command.get_short_help_str(limit)) for name, command in listed]
            )


def lazy_typer(commands: dict[str, Lazy], **settings: Any) -> typer.Typer:
    """A Typer app whose commands ``commands`` are loaded from their modules on first use."""

    class Group(LazyGroup):
        lazy = commands

    app = typer.Typer(cls=Group, **settings)
    Group.app = app
    return app
