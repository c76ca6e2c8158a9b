"""Node text templates: one row of a validated table -> one short text per node.

A :class:`Template` is a tuple of ``str.format`` parts over the table's columns, joined by
``sep`` and closed by ``end``. Missing values (absent column, ``None``, NaN, ``""``, and the
``"nan"``/``"None"`` strings that string-typed parquet columns carry) are dropped cleanly:

- a part whose fields are all missing is dropped with its label (``"Genres: {genres}"``);
- a missing field inside a kept part is removed with the parentheses around it
  (``"{title} ({year})"`` -> ``"Heat"``);
- separators never dangle or double (a description ending in ``.`` is not followed by
  ``". "``), so no ``"None"``, ``"nan"``, ``", ,"`` or ``".."`` reaches the language model.

Values are formatted plainly: ``1995.0`` -> ``1995``, ``"Crime|Drama"`` -> ``"Crime, Drama"``
(``|`` is the list separator of the data contract), runs of whitespace -> one space. The
cleanup touches the template's own text only, never the values.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from kgrec.data.contract import MISSING_STRINGS as MISSING_STRINGS

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_SENTENCE_END = (".", "!", "?")


@dataclass(frozen=True)
class Template:
    """Parts joined by ``sep``, then ``end``; see the module docstring.

    Example: ``Template(("age {age}", "occupation {occupation}"), sep=", ", end="")``
    renders ``"age 24, occupation technician"``, or ``"occupation technician"`` without age.
    """

    parts: tuple[str, ...]
    sep: str = ". "
    end: str = "."

    @classmethod
    def parse(cls, text: str) -> Template:
        """One format string, a part per sentence: ``"{title} ({year}). Genres: {genres}."``."""
        return cls(tuple(_SENTENCE_BREAK.split(text.strip())), sep=" ", end="")

    @property
    def fields(self) -> frozenset[str]:
        """The column names the template reads."""
        return frozenset(f for part in self.parts for f in _field_names(part))

    def render(self, row: Mapping[str, object]) -> str:
        """The text of one row (``{column: value}``); ``""`` when every part is missing."""
        out = ""
        for part in self.parts:
            text = _render_part(part, row)
            if text:
                out = _glue(out, self.sep) + text if out else text
        return _glue(out, self.end) if out else ""


DEFAULT_TEMPLATES: dict[str, Template] = {
    "item": Template(
        ("{title} ({year})", "Genres: {genres}", "Tags: {tags}", "{description}", "{neighbours}")
    ),
    "user": Template(("age {age}", "gender {gender}", "occupation {occupation}"), ", ", ""),
    "entity": Template(("{name} ({type})", "{description}"), end=""),
}
"""Per node type; entity types without their own template use ``entity``. ``neighbours`` is
filled by :func:`kgrec.text.features.node_texts` (the item's KG neighbours by relation)."""


def render(template: Template | str, row: Mapping[str, object]) -> str:
    """:meth:`Template.render`; a plain string is read with :meth:`Template.parse`."""
    if isinstance(template, str):
        template = Template.parse(template)
    return template.render(row)


def render_many(template: Template | str, frame: pd.DataFrame) -> list[str]:
    """:func:`render` for each row of ``frame``, in order."""
    if isinstance(template, str):
        template = Template.parse(template)
    return [template.render(row) for row in frame.to_dict("records")]


def attribute_template(columns: list[str]) -> Template:
    """``"<column> {column}"`` parts joined by ``", "`` (users of an unknown schema)."""
    return Template(tuple(f"{c.replace('_', ' ')} {{{c}}}" for c in columns), sep=", ", end="")


def format_value(value: object, spec: str = "") -> str | None:
    """``value`` as text, or ``None`` when it is missing; see the module docstring."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer() and not spec:
            value = int(value)
    if isinstance(value, list | tuple):
        kept = [t for t in (format_value(v) for v in value) if t is not None]
        return ", ".join(kept) or None
    text = format(value, spec) if spec else str(value)
    text = " ".join(text.split())
    if "|" in text:
        text = ", ".join(p.strip() for p in text.split("|") if p.strip() not in MISSING_STRINGS)
    return None if text in MISSING_STRINGS else text


def _field_names(part: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(part) if f is not None]


def _render_part(part: str, row: Mapping[str, object]) -> str:
    pieces = list(string.Formatter().parse(part))
    values = {
        k: format_value(row.get(f), spec or "")
        for k, (_, f, spec, _) in enumerate(pieces)
        if f is not None
    }
    if values and all(v is None for v in values.values()):
        return ""
    # Fill the template with markers first, so the cleanup below never touches the values.
    text = "".join(
        lit + (f"\x00{k}\x00" if k in values else "") for k, (lit, *_) in enumerate(pieces)
    )
    for k, value in values.items():
        marker = f"\x00{k}\x00"
        if value is None:
            text = re.sub(rf"\s*\(\s*{marker}\s*\)|\s*{marker}", "", text)
        else:
            text = text.replace(marker, value)
    return " ".join(text.split())


def _glue(text: str, sep: str) -> str:
    """``text + sep``, without doubling a sentence end (``"Dumont."`` + ``". "``)."""
    if sep.startswith(".") and text.endswith(_SENTENCE_END):
        sep = sep[1:]
    return text + sep
