"""The ``kgrec`` command line. Commands are thin: parse, call the library, print.

Each command's module is imported only when the command runs (:mod:`kgrec.cli.lazy`; the
registry is in :mod:`kgrec.cli.apps`), so ``kgrec --help`` starts fast and ``kgrec
recommend`` never imports torch. Commands live in :mod:`~kgrec.cli.graph` (build-graph,
cypher), :mod:`~kgrec.cli.db` (db start/stop/status/schema), :mod:`~kgrec.cli.db_export`
(db export), :mod:`~kgrec.cli.learn` (embed, train, evaluate), :mod:`~kgrec.cli.serve`
(recommend), :mod:`~kgrec.cli.explain` (explain), :mod:`~kgrec.cli.items` (add-items, items
retire|unretire), :mod:`~kgrec.cli.users` (users forget) and
:mod:`~kgrec.cli.interactions` (add-interactions).
"""

from __future__ import annotations

from kgrec.cli.apps import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``kgrec`` script."""
    app()
