"""The Cypher kgrec runs, read from the ``.cypher`` files under ``cypher/``.

Queries live in files so analysts and reviewers read exactly what runs. Labels and
relationship types cannot be parameters in Cypher, so templates name them with placeholders
(``__LABEL__``, ``__SOURCE__``, ``__TARGET__``, ``__TYPE__``) that are replaced only by names
that pass :func:`kgrec.naming.check_identifier`; every value is a ``$parameter``.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from kgrec.errors import KgrecError
from kgrec.naming import check_identifier

PLACEHOLDER = re.compile(r"__([A-Z]+)__")


def cypher_dir() -> Path:
    """The ``cypher/`` folder (``KGREC_CYPHER_DIR`` overrides; default: beside the package)."""
    override = os.environ.get("KGREC_CYPHER_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "cypher"


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_query(name: str, **names: str) -> str:
    """Text of ``cypher/<name>.cypher`` with its placeholders filled by checked ``names``.

    ``load_query("load/upsert_nodes", label="Item")`` fills ``__LABEL__``.
    """
    path = cypher_dir() / f"{name}.cypher"
    if not path.exists():
        raise KgrecError(f"query file {path} is missing (is kgrec installed from a checkout?)")
    text = _read(path)
    wanted = {m.lower() for m in PLACEHOLDER.findall(text)}
    missing = wanted - names.keys()
    if missing:
        raise KgrecError(f"{path.name} needs {sorted(missing)}")
    return PLACEHOLDER.sub(lambda m: check_identifier(names[m.group(1).lower()]), text)
