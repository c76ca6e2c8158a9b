"""Node text templates: rows of the validated tables -> one sentence per node.

A template is a ``str.format`` string whose fields are table columns. A fragment (the text
between two sentence breaks ``. ``) whose fields are all missing, empty or NaN is dropped,
so ``"{title} ({year}). Genres: {genres}."`` renders ``"Heat (1995)."`` when genres are
unknown, never ``"nan"`` or ``"None"``.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping

import pandas as pd

DEFAULT_TEMPLATES: dict[str, str] = {
    "item": "{title} ({year}). Genres: {genres}. {description}. Tags: {tags}. {neighbours}",
    "user": "A {age}-year-old {gender} {occupation}",
    "entity": "{name} ({type}). {neighbours}",
}
"""Per node type; node types without their own template use ``entity``."""


def _empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in ("", "nan", "None")


def _fields(fragment: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(fragment) if f]


def render(template: str, row: Mapping[str, object]) -> str:
    """Fill ``template`` from ``row``; fields that are missing lose their whole fragment."""
    pieces = []
    for fragment in re.split(r"(?<=\.)\s+", template):
        fields = _fields(fragment)
        values = {f: row.get(f) for f in fields}
        present = {f: v for f, v in values.items() if not _empty(v)}
        if fields and not present:
            continue
        text = fragment
        for field in fields:
            if field in present:
                value = present[field]
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                text = text.replace("{" + field + "}", str(value).replace("|", ", "))
            else:
                text = re.sub(r"\s*\(?\{" + re.escape(field) + r"\}\)?", "", text)
        pieces.append(text)
    out = " ".join(pieces)
    out = re.sub(r"\s+", " ", out).strip()
    out = re.sub(r"\s+([.,])", r"\1", out)
    out = re.sub(r"\.{2,}", ".", out)
    return out


def render_many(template: str, frame: pd.DataFrame) -> list[str]:
    """:func:`render` for each row of ``frame``."""
    return [render(template, row) for row in frame.to_dict("records")]


def join_names(names: Iterable[str], limit: int) -> str:
    """The first ``limit`` non-empty names, comma-separated."""
    kept = [n for n in names if not _empty(n)][:limit]
    return ", ".join(kept)
