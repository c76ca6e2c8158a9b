"""Pieces every command shares: error handling, the config option, printing rows."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from kgrec.config import Config
    from kgrec.store.base import QueryResult

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn kgrec's user-facing errors into a message on stderr and a non-zero exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from kgrec.errors import KgrecError

        try:
            return func(*args, **kwargs)
        except KgrecError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # disk full, permission denied: the system's words, one line
            where = f"{exc.filename}: " if exc.filename else ""
            typer.secho(
                f"error: {where}{exc.strerror or exc}; fix that and run the command again",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="YAML config (see configs/). Options given on the command line override it.",
    exists=False,
    dir_okay=False,
)
ArtifactsOption = typer.Option(None, "--artifacts", help="Artifact folder.")
CheckpointOption = typer.Option(
    None, "--checkpoint", help="Model (default: <artifacts>/model/model.pt)."
)


def load_cli_config(
    path: Path | None, overrides: dict[str, Any], *, recover: bool = True
) -> Config:
    """The config of a command; with ``recover``, a build-graph swap that a killed run left
    half done in its artifact folder is finished or rolled back first (:mod:`kgrec.swap`)."""
    from kgrec.config import load_config

    if path is None and Path("configs/demo.yaml").exists():
        path = Path("configs/demo.yaml")
    config = load_config(path, overrides)
    if recover:
        from kgrec.swap import recover_interrupted

        for note in recover_interrupted(config.artifacts_dir, config.store):
            typer.secho(f"note: {note}", err=True)
    return config


def print_result(result: QueryResult, fmt: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps(list(result.records()), indent=2, default=str))
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table()
        for column in result.columns:
            table.add_column(column)
        for row in result.rows:
            table.add_row(*[_cell(v) for v in row])
        Console().print(table)
        typer.echo(f"{len(result.rows)} row(s)")


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)
