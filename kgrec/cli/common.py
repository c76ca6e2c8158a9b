"""Pieces every command shares: error handling, options, config, output, the graph store.

Every command imports this module, so it imports only what is light (typer, the config);
the three heavier imports (rich for tables and progress bars, the graph store's clients)
happen inside the functions below that need them, so that ``kgrec recommend -f json`` loads
neither.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from kgrec.config import Config, config_file, load_config
from kgrec.errors import KgrecError
from kgrec.swap import recover_interrupted

if TYPE_CHECKING:
    from kgrec.progress import Reporter
    from kgrec.store.base import GraphStore

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn kgrec's user-facing errors into a message on stderr and a non-zero exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
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


def load_cli_config(
    path: Path | None, overrides: dict[str, Any], *, recover: bool = True
) -> Config:
    """The config of ``--config``, else ``$KGREC_CONFIG``, else ``configs/demo.yaml`` when it
    exists (else the defaults), with ``overrides`` applied. With ``recover``, a build-graph
    swap that a killed run left half done in its artifact folder is finished or rolled back
    first (:mod:`kgrec.swap`)."""
    config = load_config(config_file(path), overrides)
    if recover:
        for note in recover_interrupted(config.artifacts_dir, config.store):
            typer.secho(f"note: {note}", err=True)
    return config


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


def check_format(fmt: str, allowed: Sequence[str]) -> None:
    if fmt not in allowed:
        raise KgrecError(f"--format must be one of {', '.join(allowed)}, got {fmt!r}")


def reporter(as_json: bool) -> Reporter:
    """Progress bars on stderr for people; nothing when the output is JSON for scripts."""
    # rich (progress bars) loads only for the long-running commands that draw them
    from kgrec.progress import Reporter, RichReporter

    return Reporter() if as_json else RichReporter()


def open_graph_store(config: Config) -> GraphStore:
    """The configured graph database, started when it is the embedded one."""
    # The store modules import pandas and a database client: only commands that talk to the
    # database pay for them (recommend without --record does not).
    from kgrec.store.factory import open_store

    return open_store(config.store, config.state_path)


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    right: Sequence[str] = (),
) -> None:
    """A table for people on stdout; ``right``: the columns aligned right (numbers)."""
    # rich costs tens of milliseconds to import; json and csv output never load it
    from rich import console, table

    out = table.Table(title=title)
    for column in columns:
        out.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        out.add_row(*[_cell(v) for v in row])
    console.Console().print(out)


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> None:
    """Rows as json (one object per row), csv or a table."""
    if fmt == "json":
        objects = [dict(zip(columns, row, strict=True)) for row in rows]
        typer.echo(json.dumps(objects, indent=2, default=str))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        print_table(columns, rows)
        typer.echo(f"{len(rows)} row(s)")


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)
