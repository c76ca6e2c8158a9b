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

    return wrapper  # type: ignore[return-value]


ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help=(
        "YAML config (see configs/; default: $KGREC_CONFIG, else configs/demo.yaml when it "
        "exists). Options given on the command line override it."
    ),
    exists=False,
    dir_okay=False,
)
ArtifactsOption = typer.Option(None, "--artifacts", help="Artifact folder.")
CheckpointOption = typer.Option(
    None, "--checkpoint", help="Model (default: <artifacts>/model/model.pt)."
)


def load_cli_config(path: Path | None, overrides: dict[str, Any]) -> Config:
    """The config of ``--config``, else ``$KGREC_CONFIG``, else ``configs/demo.yaml`` when it
    exists (else the defaults), with ``overrides`` applied."""
    from kgrec.config import config_file, load_config

    return load_config(config_file(path), overrides)


PARAM_TYPES = ("str", "int", "float", "bool", "json")
"""Types a ``-p name:type=value`` may name (``-p name=value`` is a string)."""

PARAM_HELP = (
    "Query parameter key=value (repeatable). Values are strings (-p user=196 sends '196'); "
    "say another type with key:type=value, type one of int, float, bool, json "
    '(-p limit:int=5, -p min_rating:float=4.5, -p ids:json=\'["1","2"]\', -p since:json=null). '
    "Library queries convert values to the types their header declares."
)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["user=196", "limit:int=5"]`` -> ``{"user": "196", "limit": 5}``.

    Raises:
        typer.BadParameter: on a pair without ``=``, an unknown type or a value that is not
            of its type.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        spec, sep, raw = pair.partition("=")
        name, _, kind = spec.partition(":")
        name, kind = name.strip(), kind.strip().lower() or "str"
        if not sep or not name:
            raise typer.BadParameter(
                f"expected key=value or key:type=value, got {pair!r}", param_hint="--param"
            )
        if kind not in PARAM_TYPES:
            raise typer.BadParameter(
                f"unknown type {kind!r} in {pair!r}: use {', '.join(PARAM_TYPES)}",
                param_hint="--param",
            )
        try:
            params[name] = _typed(raw, kind)
        except ValueError:
            raise typer.BadParameter(
                f"{raw!r} is not {'an' if kind == 'int' else 'a'} {kind} (in {pair!r})",
                param_hint="--param",
            ) from None
    return params


def _typed(raw: str, kind: str) -> Any:
    if kind == "str":
        return raw
    if kind == "int":
        return int(raw.strip())
    if kind == "float":
        value = float(raw.strip())
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(raw)
        return value
    if kind == "bool":
        text = raw.strip().lower()
        if text not in ("true", "false"):
            raise ValueError(raw)
        return text == "true"
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(raw) from exc


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
