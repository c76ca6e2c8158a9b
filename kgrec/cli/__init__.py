"""The ``kgrec`` command line. Commands are thin: parse, call the library, print.

Heavy libraries (torch, pandas, database clients) are imported inside commands so that
``kgrec --help`` starts fast. Commands live in :mod:`~kgrec.cli.graph` (build-graph, cypher),
:mod:`~kgrec.cli.db` (db start/stop/status/schema), :mod:`~kgrec.cli.learn` (embed, train,
evaluate), :mod:`~kgrec.cli.serve` (recommend), :mod:`~kgrec.cli.explain` (explain),
:mod:`~kgrec.cli.items` (add-items) and :mod:`~kgrec.cli.interactions` (add-interactions);
importing this package registers them on :data:`app`.
"""

from __future__ import annotations

from kgrec.cli import (  # noqa: F401  (register their commands)
    db,
    explain,
    graph,
    interactions,
    items,
    learn,
    serve,
)
from kgrec.cli.apps import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``kgrec`` script."""
    app()
