"""Reading Cypher text without a database: clauses and the node/relationship patterns of
``MATCH`` clauses, enough for :mod:`kgrec.store.guard` to judge a query's shape.

:func:`mask` blanks string literals and comments (same length, so positions stay valid in the
original text); :func:`clauses` splits the top level into clauses; :func:`match_patterns`
reads each comma-separated pattern of every ``MATCH`` clause into :class:`Pattern` records.
Patterns it does not understand are skipped rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MASK = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.DOTALL)
_CLAUSE = re.compile(
    r"(?<![\w.$])(OPTIONAL\s+MATCH|MATCH|WHERE|WITH|RETURN|UNWIND|ORDER\s+BY|SKIP|LIMIT|CALL|"
    r"CREATE|MERGE|SET|DETACH\s+DELETE|DELETE|REMOVE|FOREACH|UNION(?:\s+ALL)?)\b",
    re.IGNORECASE,
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class NodePattern:
    """``(var:Label {props})``: ``key`` identifies the node across patterns (its variable, or
    a unique key when anonymous)."""

    var: str | None
    inline: bool
    key: str
    label: str = ""

    @property
    def display(self) -> str:
        return self.var or f"({self.label})"


@dataclass
class RelPattern:
    """``-[var:A|B*1..2 {props}]->``; ``hops`` is ``(1, 1)`` for a single hop, ``(low, None)``
    when unbounded; ``left``/``right`` are the keys of the nodes on each side."""

    var: str | None
    types: list[str]
    hops: tuple[int, int | None]
    inline: bool
    left: str = ""
    right: str = ""


@dataclass
class Pattern:
    """One comma-separated pattern of a MATCH clause (``clause`` is its index), with its
    path variable (``p = ...``), its text as written and its span in the query."""

    clause: int
    path_var: str | None
    nodes: list[NodePattern] = field(default_factory=list)
    rels: list[RelPattern] = field(default_factory=list)
    text: str = ""
    span: tuple[int, int] = (0, 0)


def _blank(match: re.Match[str]) -> str:
    """A string literal or comment as blanks of the same length (positions stay put)."""
    text = match.group(0)
    if text[0] in "'\"`":
        return text[0] + " " * (len(text) - 2) + text[-1]
    return " " * len(text)


def mask(cypher: str) -> str:
    """``cypher`` with string literals and comments blanked (positions stay put)."""
    return _MASK.sub(_blank, cypher)


# ----------------------------------------------------------------------------- clauses


@dataclass(frozen=True)
class Clause:
    """A top-level clause: its keyword (``MATCH``, ``OPTIONAL MATCH``, ``WITH`` ...), where it
    starts, and where its body starts and ends."""

    keyword: str
    start: int
    body: int
    end: int


def clauses(masked: str) -> list[Clause]:
    """The top-level clauses of ``masked`` (not those inside ``{...}``, ``(...)``, ``[...]``)."""
    depth, depths = 0, []
    for ch in masked:
        if ch in "([{":
            depth += 1
        depths.append(depth)
        if ch in ")]}":
            depth = max(depth - 1, 0)
    marks = []
    for m in _CLAUSE.finditer(masked):
        if depths[m.start()] != 0:
            continue
        keyword = " ".join(m.group(1).upper().split())
        if keyword == "WITH" and re.search(r"(STARTS|ENDS)\s*$", masked[: m.start()].upper()):
            continue
        marks.append((keyword, m.start(), m.end()))
    return [
        Clause(kw, start, body, marks[i + 1][1] if i + 1 < len(marks) else len(masked))
        for i, (kw, start, body) in enumerate(marks)
    ]


# ----------------------------------------------------------------------------- patterns


def split_top(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each comma-separated piece of ``text[start:end]`` at depth 0."""
    depth, pieces, begin = 0, [], start
    for pos in range(start, end):
        ch = text[pos]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append((begin, pos))
            begin = pos + 1
    pieces.append((begin, end))
    return pieces


def _closing(text: str, pos: int) -> int:
    """Index of the bracket closing the one at ``pos`` (``-1`` when unbalanced)."""
    depth = 0
    for i in range(pos, len(text)):
        if text[i] in "([{":
            depth += 1
        elif text[i] in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def parse_pattern(text: str, clause: int, n: int) -> Pattern | None:
    """One comma-separated pattern of a MATCH clause, or ``None`` when it is not understood."""
    match = re.match(r"\s*([A-Za-z_]\w*)\s*=\s*", text)
    path_var = match.group(1) if match else None
    pos = match.end() if match else 0
    wrapper = re.match(r"\s*(all)?shortestPath\s*\(", text[pos:], re.IGNORECASE)
    if wrapper:
        pos += wrapper.end() - 1
        close = _closing(text, pos)
        if close < 0:
            return None
        text, pos = text[:close], pos + 1
    pattern = Pattern(clause, path_var)
    parsed = _node(text, _skip(text, pos), f"{clause}.{n}.0")
    if parsed is None:
        return None
    pos, current = parsed
    pattern.nodes.append(current)
    while (pos := _skip(text, pos)) < len(text):
        rel = _rel(text, pos)
        if rel is None:
            return None
        pos, relationship = rel
        parsed = _node(text, _skip(text, pos), f"{clause}.{n}.{len(pattern.nodes)}")
        if parsed is None:
            return None
        pos, following = parsed
        relationship.left, relationship.right = current.key, following.key
        pattern.rels.append(relationship)
        pattern.nodes.append(following)
        current = following
    return pattern


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _node(text: str, pos: int, anonymous: str) -> tuple[int, NodePattern] | None:
    if pos >= len(text) or text[pos] != "(":
        return None
    close = _closing(text, pos)
    if close < 0:
        return None
    inner = text[pos + 1 : close].strip()
    var = _IDENT.match(inner)
    name = var.group(0) if var else None
    label = inner[var.end() if var else 0 :].split("{", 1)[0].strip()
    return close + 1, NodePattern(name, "{" in inner, name or anonymous, label)


def _rel(text: str, pos: int) -> tuple[int, RelPattern] | None:
    for arrow in ("<-", "-"):
        if text.startswith(arrow, pos):
            pos += len(arrow)
            break
    else:
        return None
    inner = ""
    if text.startswith("[", pos):
        close = _closing(text, pos)
        if close < 0:
            return None
        inner, pos = text[pos + 1 : close].strip(), close + 1
    for arrow in ("->", "-"):
        if text.startswith(arrow, pos):
            pos += len(arrow)
            break
    else:
        return None
    body = inner.split("{", 1)[0]
    var = _IDENT.match(body)
    head, star, tail = body.partition("*")
    types = [t.strip(" :") for t in head.split(":", 1)[1].split("|")] if ":" in head else []
    hops: tuple[int, int | None] = (1, 1)
    if star:
        low, dots, high = (t.strip() for t in tail.partition(".."))
        if not dots:
            hops = (int(low), int(low)) if low.isdigit() else (1, None)
        else:
            hops = (int(low) if low.isdigit() else 1, int(high) if high.isdigit() else None)
    return pos, RelPattern(
        var.group(0) if var else None, [t for t in types if t], hops, "{" in inner
    )


def match_patterns(original: str, masked: str, parts: list[Clause]) -> list[Pattern]:
    """Every pattern of the MATCH clauses among ``parts`` (``original`` gives their text)."""
    found = []
    for index, clause in enumerate(parts):
        if not clause.keyword.endswith("MATCH"):
            continue
        for n, (a, b) in enumerate(split_top(masked, clause.body, clause.end)):
            parsed = parse_pattern(masked[a:b], index, n)
            if parsed is not None:
                parsed.text = " ".join(original[a:b].split())
                parsed.span = (a, b)
                found.append(parsed)
    return found
