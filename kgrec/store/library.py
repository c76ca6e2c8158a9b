"""The analysts' and support staff's Cypher library: ``cypher/analyst`` and ``cypher/support``.

Each library file starts with a header of ``//`` comment lines::

    // name: top_items_per_genre
    // purpose: The most interacted items of each genre (training interactions only).
    // params: genre (string, e.g. "genre:drama"),
    //   limit (int, default 10, items per genre)
    // example: kgrec cypher run top_items_per_genre -p genre=genre:drama -p limit=5

``//`` plus an indent continues a key. A parameter is ``name (type[, default VALUE][, ...])``,
type ``string``, ``int``, ``float`` or ``bool``; one with a default is optional (``default
null`` sends ``null``: "no filter"); ``params: none`` declares none. Files without a header
are read leniently (name: the stem, purpose: the first comment, parameters: the ``$names``,
required). Values always travel as parameters, never as query text.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgrec.errors import KgrecError
from kgrec.store.base import GraphStore, QueryResult
from kgrec.store.queries import cypher_dir

LIBRARY_DIRS = ("analyst", "support")
"""Folders of ``cypher/`` that hold the library (``load`` and ``schema`` are internal)."""

TYPES = ("string", "int", "float", "bool", "any")
"""Parameter types; ``any`` (undeclared ``$names``) passes values through unchanged."""

HEADER_KEYS = ("name", "purpose", "params", "example")
ARTICLES = {"int": "an int", "float": "a number (float)", "bool": "true or false"}
_KEY_LINE = re.compile(r"^//\s?(name|purpose|params|example)\s*:\s*(.*)$", re.IGNORECASE)
_PARAM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_INT_USE = re.compile(r"\b(?:LIMIT|SKIP)\s+\$([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_TOKENS = re.compile(
    r"(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`)"
    r"|(?P<comment>//[^\n]*|/\*.*?\*/)",
    re.DOTALL,
)
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


@dataclass(frozen=True)
class Param:
    """One query parameter as the header declares it (or as found in the text)."""

    name: str
    type: str = "any"
    default: Any = None
    required: bool = True
    description: str = ""

    def signature(self) -> str:
        """``limit (int, default 10)`` style summary for help and errors."""
        parts = [self.type]
        if not self.required:
            parts.append(f"default {json.dumps(self.default)}")
        return f"{self.name} ({', '.join(parts)})"


@dataclass(frozen=True)
class QueryFile:
    """A parsed Cypher file: its header fields and its full text."""

    name: str
    path: Path | None
    purpose: str
    params: list[Param] = field(default_factory=list)
    example: str = ""
    text: str = ""

    @property
    def qualified_name(self) -> str:
        """``analyst/top_items_per_genre`` for library files, else :attr:`name`."""
        if self.path is not None:
            try:
                rel = self.path.resolve().relative_to(cypher_dir().resolve())
            except ValueError:
                return self.name
            return rel.with_suffix("").as_posix()
        return self.name

    def param(self, name: str) -> Param | None:
        """The parameter called ``name``, or ``None``."""
        return next((p for p in self.params if p.name == name), None)


# ------------------------------------------------------------------------- parsing


def parse_query(text: str, *, name: str = "query", path: Path | None = None) -> QueryFile:
    """Parse ``text`` (a header is optional); ``name`` is used when the header has none."""
    fields, comments = _header(text)
    where = str(path) if path is not None else name
    declared = _parse_params(fields["params"], where) if "params" in fields else []
    used = used_parameters(text)
    known = {p.name for p in declared}
    int_used = set(_INT_USE.findall(_code(text)))
    extra = [Param(n, "int" if n in int_used else "any") for n in used if n not in known]
    purpose = fields.get("purpose") or (comments[0] if comments else "")
    return QueryFile(
        name=fields.get("name") or name,
        path=path,
        purpose=purpose,
        params=[*declared, *extra],
        example=fields.get("example", ""),
        text=text,
    )


def read_query(path: Path | str) -> QueryFile:
    """Parse the Cypher file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KgrecError(f"cannot read Cypher file {path}: {exc.strerror or exc}") from exc
    return parse_query(text, name=path.stem, path=path)


def used_parameters(text: str) -> list[str]:
    """The distinct ``$names`` in ``text``, in order of appearance (comments/strings skipped)."""
    return list(dict.fromkeys(_DOLLAR.findall(_code(text))))


def _code(text: str) -> str:
    """``text`` with string literals emptied and comments removed (one left-to-right scan)."""
    return _TOKENS.sub(lambda m: "''" if m.group("string") else " ", text)


def _header(text: str) -> tuple[dict[str, str], list[str]]:
    """Header fields (continuation lines joined) and the other leading comment lines."""
    fields: dict[str, str] = {}
    comments: list[str] = []
    current: str | None = None
    for raw in text.lstrip("\ufeff").splitlines():
        line = raw.strip()
        if not line:
            current = None
            continue
        if not line.startswith("//"):
            break
        match = _KEY_LINE.match(line)
        if match:
            current = match.group(1).lower()
            fields[current] = match.group(2).strip()
        elif current is not None and (line[2:4] == "  " or line[2:3] == "\t"):
            body = line[2:].strip()
            glue = "\n" if current == "example" else " "
            fields[current] = f"{fields[current]}{glue}{body}".strip()
        elif line[2:].strip():
            current = None
            comments.append(line[2:].strip())
    return fields, comments


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch == '"':
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _parse_params(spec: str, where: str) -> list[Param]:
    if spec.strip().lower() in ("", "none", "-"):
        return []
    params: list[Param] = []
    for item in _split_top(spec):
        match = _PARAM.match(item)
        if not match:
            raise KgrecError(
                f"{where}: cannot read parameter {item!r} in the 'params:' header "
                "(expected: name (type, default VALUE, description))"
            )
        name, inner = match.group(1), match.group(2) or ""
        pieces = _split_top(inner)
        ptype = pieces.pop(0).lower() if pieces and pieces[0].lower() in TYPES else "any"
        default: Any = None
        required = True
        notes = []
        for piece in pieces:
            if piece.lower().startswith("default "):
                required = False
                default = _default(piece[8:].strip(), ptype, name, where)
            elif piece.lower() == "optional":
                required = False
            else:
                notes.append(piece)
        params.append(Param(name, ptype, default, required, ", ".join(notes)))
    names = [p.name for p in params]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise KgrecError(f"{where}: parameter(s) {', '.join(dupes)} declared twice")
    return params


def _default(raw: str, ptype: str, name: str, where: str) -> Any:
    if raw.lower() in ("null", "none"):
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw.strip("'")
    if ptype == "any":
        return value
    try:
        return _coerce(value, ptype)
    except ValueError as exc:
        raise KgrecError(f"{where}: default of {name} is not a {ptype}: {raw!r}") from exc


# ------------------------------------------------------------------------- finding


def list_queries(root: Path | None = None) -> list[QueryFile]:
    """Every library query (``.cypher`` under ``analyst/`` and ``support/``), sorted."""
    base = root or cypher_dir()
    files = sorted(p for d in LIBRARY_DIRS for p in (base / d).glob("*.cypher") if p.is_file())
    return [read_query(p) for p in files]


def find_query(name_or_path: str, root: Path | None = None) -> QueryFile:
    """A library query by name (``similar_users``), qualified name (``analyst/similar_users``)
    or header name, or any ``.cypher`` file by path; unknown names list close matches."""
    candidate = Path(name_or_path).expanduser()
    if name_or_path.endswith(".cypher") and candidate.is_file():
        return read_query(candidate)
    queries = list_queries(root)
    key = name_or_path.strip().removesuffix(".cypher")
    by_qualified = [q for q in queries if _relative(q, root) == key]
    if by_qualified:
        return by_qualified[0]
    matches = [q for q in queries if key in (q.name, q.path.stem if q.path else q.name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        options = ", ".join(_relative(q, root) for q in matches)
        raise KgrecError(f"query name {key!r} is ambiguous: say which of {options}")
    if name_or_path.endswith(".cypher"):
        raise KgrecError(f"Cypher file not found: {candidate}")
    names = sorted({q.name for q in queries})
    stem = key.rsplit("/", 1)[-1]
    close = [n for n in names if stem and stem in n]
    close += [n for n in difflib.get_close_matches(stem, names, cutoff=0.5) if n not in close]
    close = close[:5]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise KgrecError(
        f"no query named {key!r}.{hint} List them with: kgrec cypher list"
        if queries
        else f"no query named {key!r} (no library queries found under {root or cypher_dir()})"
    )


def resolve_query(query: str, root: Path | None = None) -> QueryFile:
    """What ``kgrec cypher run QUERY`` means: a library name, a ``.cypher`` path, or inline text.

    A single word of letters, digits, ``_``, ``-`` and ``/`` (or a ``.cypher`` path) is looked
    up; anything else is parsed as inline Cypher.
    """
    if query.endswith(".cypher") or re.fullmatch(r"[A-Za-z0-9_\-/]+", query.strip()):
        return find_query(query.strip(), root)
    return parse_query(query, name="inline query")


def _relative(query: QueryFile, root: Path | None) -> str:
    base = (root or cypher_dir()).resolve()
    if query.path is None:
        return query.name
    try:
        return query.path.resolve().relative_to(base).with_suffix("").as_posix()
    except ValueError:
        return query.name


# ------------------------------------------------------------------------- binding


def bind_params(query: QueryFile, given: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters to send for ``query``: ``given`` coerced to the declared types, defaults
    filled in. Unknown names, missing required ones and ill-typed values are ``KgrecError``."""
    label = query.qualified_name
    known = {p.name: p for p in query.params}
    unknown = [n for n in given if n not in known]
    if unknown:
        hint = ""
        for name in unknown:
            close = difflib.get_close_matches(name, list(known), n=1)
            if close:
                hint = f" (did you mean {close[0]}?)"
                break
        raise KgrecError(
            f"query {label} has no parameter {', '.join(unknown)}{hint}. "
            f"It takes: {_signature(query)}.{_example(query)}"
        )
    bound: dict[str, Any] = {}
    missing = []
    for param in query.params:
        if param.name not in given:
            if param.required:
                missing.append(param.name)
            else:
                bound[param.name] = param.default
            continue
        value = given[param.name]
        if value is None:
            if param.required:
                missing.append(param.name)
            bound[param.name] = None
            continue
        try:
            bound[param.name] = _coerce(value, param.type)
        except ValueError:
            kind = ARTICLES.get(param.type, f"a {param.type}")
            raise KgrecError(
                f"query {label}: parameter {param.name} must be {kind}, "
                f"got {value!r}.{_example(query)}"
            ) from None
    if missing:
        flags = " ".join(f"-p {n}=..." for n in missing)
        raise KgrecError(
            f"query {label} needs parameter(s) {', '.join(missing)} ({flags}). "
            f"It takes: {_signature(query)}.{_example(query)}"
        )
    return bound


def run_query(store: GraphStore, query: QueryFile, given: Mapping[str, Any]) -> QueryResult:
    """Bind ``given`` to ``query`` and run it read-only on ``store``."""
    return store.query(query.text, bind_params(query, given), write=False)


def _coerce(value: Any, ptype: str) -> Any:
    """``value`` as ``ptype``; raises ``ValueError`` when it is not one."""
    if ptype == "any":
        return value
    if ptype == "string":
        if isinstance(value, (dict, list)):
            raise ValueError(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if ptype == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(value)
    if isinstance(value, (bool, dict, list)):
        raise ValueError(value)
    if ptype == "int":
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(value)
            return int(value)
        return int(str(value).strip())
    if ptype == "float":
        number = float(value if isinstance(value, (int, float)) else str(value).strip())
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(value)
        return number
    raise ValueError(f"unknown type {ptype}")


def _signature(query: QueryFile) -> str:
    return ", ".join(p.signature() for p in query.params) or "no parameters"


def _example(query: QueryFile) -> str:
    return f"\nExample: {query.example}" if query.example else ""
