"""A guard for FalkorDB 4.16's merged rows: queries whose counts come out too small.

FalkorDB 4.16.3 evaluates the parts of a ``MATCH`` pattern that nothing else in the query
uses as boolean adjacency matrices, so it yields one row per distinct combination of the
nodes it keeps instead of one row per match. Found by experiment on the embedded server
(``tests/store/test_guard.py`` keeps checking it):

- **chain**: a node no one uses between two relationships no one uses (``(u)-[:INTERACTED]->
  (i)-[:HAS_GENRE]->(g)`` with neither ``i`` nor the relationships used elsewhere, also
  across two ``MATCH`` clauses joined at ``i``, and fixed-length ``-[*2]->``) gives each
  ``(u, g)`` once, however many items connect them: per genre ``count(*)`` counts users
  instead of interactions (Drama on ml-100k: 943 instead of 39,895);
- **parallel**: one relationship no one uses, of a type that may repeat between the same
  two nodes (``RECOMMENDED``, written once per request; an untyped ``-->``; several types
  ``-[:A|B]->``), gives each pair of nodes once.

"Used" means: its variable appears anywhere outside the ``MATCH`` patterns (``WHERE``,
``WITH``, ``RETURN``, ... ; ``WITH *`` uses all), or it has an inline property map
(``{rating: 5.0}``), or the pattern is bound to a path variable (``p = ...``). Variable-length
ranges (``*1..3``) enumerate paths and are right. Only what depends on how many rows there
are goes wrong: ``count(*)``, ``count(x)``, ``sum``, ``avg``, ``collect`` and rows returned
as they are; ``DISTINCT``, ``count(DISTINCT x)``, ``min`` and ``max`` are unaffected.

:func:`row_merge_risk` reads a query's text (no database needed) and says whether it has
that shape; ``kgrec cypher run`` prints :meth:`RowMergeRisk.message` on stderr before it
runs such a query on FalkorDB. The fix is always the same: name a relationship and count it
(``-[r:INTERACTED]-> ... count(r)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kgrec.store.patterns import Clause, Pattern, RelPattern, clauses, mask, match_patterns

PARALLEL_TYPES = frozenset({"RECOMMENDED"})
"""Relationship types kgrec may write several times between the same two nodes."""

_SENSITIVE = re.compile(
    r"\b(count|sum|avg|collect|stDevP?|percentileCont|percentileDisc)\s*\(\s*(?!DISTINCT\b)",
    re.IGNORECASE,
)
_AGGREGATE = re.compile(
    r"\b(count|sum|avg|collect|min|max|stDevP?|percentileCont|percentileDisc)\s*\(", re.IGNORECASE
)
_STAR = re.compile(r"^\s*(DISTINCT\s+)?\*", re.IGNORECASE)
_BINDING = re.compile(r"[(\[]\s*([A-Za-z_]\w*)|\s*([A-Za-z_]\w*)\s*=")


@dataclass(frozen=True)
class RowMergeRisk:
    """Why a query's counts would come out too small on FalkorDB 4.16.

    Attributes:
        pattern: The pattern concerned, as written (whitespace collapsed).
        kind: ``"chain"`` (a middle node and its relationships unused) or ``"parallel"``
            (one unused relationship whose type may repeat between two nodes).
        unused: What nothing uses: ``"(i)"``, ``"[:RECOMMENDED]"`` ...
        ends: The nodes each row is then unique on, e.g. ``"u, g"``.
        affected: What comes out wrong: ``"count(*)"``, ``"sum(...)"`` or ``"rows"``.
        relationship: A relationship type to suggest naming, e.g. ``"INTERACTED"``.
    """

    pattern: str
    kind: str
    unused: str
    ends: str
    affected: str
    relationship: str

    def message(self) -> str:
        """One line for stderr."""
        name = f"[r:{self.relationship}]" if self.relationship else "[r]"
        if self.affected == "rows":
            what = "it returns fewer rows than there are matches"
            fix = f"return r from {name} (or say RETURN DISTINCT if distinct pairs are meant)"
        else:
            what = f"{self.affected} comes out too small"
            fix = f"name a relationship and count it: {name} ... count(r)"
        return (
            f"warning: FalkorDB 4.16 gives one row per distinct {self.ends} pair, not one per "
            f"match, in {self.pattern} because nothing uses {self.unused}, so {what}; {fix} "
            "(README: the count(*) caveat)"
        )


def row_merge_risk(cypher: str) -> RowMergeRisk | None:
    """The first :class:`RowMergeRisk` in ``cypher``, or ``None`` when its counts are right.

    Reads the text only; patterns it cannot parse are given the benefit of the doubt.
    """
    masked = mask(cypher)
    found = clauses(masked)
    part: list[Clause] = []
    for clause in [*found, Clause("UNION", len(masked), len(masked), len(masked))]:
        if clause.keyword.startswith("UNION"):
            risk = _part_risk(cypher, masked, part)
            if risk is not None:
                return risk
            part = []
        else:
            part.append(clause)
    return None


# ----------------------------------------------------------------------------- analysis


def _part_risk(original: str, masked: str, parts: list[Clause]) -> RowMergeRisk | None:
    """The risk in one query of a UNION (all of it when there is no UNION)."""
    patterns = match_patterns(original, masked, parts)
    if not patterns:
        return None
    used = _used_variables(masked, parts, patterns)
    found = _shape(patterns, used)
    if found is None:
        return None
    affected = _affected(masked, parts, found.clause)
    if affected is None:
        return None
    return RowMergeRisk(
        _short(found.pattern.text), found.kind, found.unused, found.ends, affected, found.type
    )


def _used_variables(masked: str, parts: list[Clause], patterns: list[Pattern]) -> set[str]:
    """Variables written anywhere but where MATCH patterns bind them; ``*`` for ``WITH *``."""
    start, end = parts[0].start, parts[-1].end
    chars = list(masked)
    for pattern in patterns:  # blank the binding names, keep inline maps and the rest
        a, b = pattern.span
        for m in _BINDING.finditer(masked, a, b):
            group = 1 if m.group(1) else 2
            if group == 2 and m.start() != a:
                continue
            chars[m.start(group) : m.end(group)] = " " * (m.end(group) - m.start(group))
    rest = "".join(chars[start:end])
    found = set()
    for m in re.finditer(r"(?<![\w.$:])([A-Za-z_]\w*)\b", rest):
        before, after = rest[: m.start()].rstrip(), rest[m.end() :].lstrip()
        if after.startswith(":") and before.endswith(("{", ",")):
            continue  # a map key
        found.add(m.group(1))
    projections = [masked[c.body : c.end] for c in parts if c.keyword in ("WITH", "RETURN")]
    if any(_STAR.match(text) for text in projections):
        found.add("*")
    return found


@dataclass(frozen=True)
class _Found:
    clause: int
    pattern: Pattern
    kind: str
    unused: str
    ends: str
    type: str


def _shape(patterns: list[Pattern], used: set[str]) -> _Found | None:
    """The first chain, then the first parallel relationship, that nothing uses."""

    def is_used(var: str | None, inline: bool, pattern: Pattern) -> bool:
        return inline or pattern.path_var is not None or "*" in used or (var or "") in used

    node_used: dict[str, bool] = {}
    names: dict[str, str] = {}
    for pattern in patterns:
        for node in pattern.nodes:
            node_used[node.key] = node_used.get(node.key, False) or is_used(
                node.var, node.inline, pattern
            )
            names[node.key] = node.display
    single: dict[str, list[tuple[RelPattern, Pattern]]] = {}
    parallel: list[tuple[RelPattern, Pattern]] = []
    for pattern in patterns:
        for rel in pattern.rels:
            if is_used(rel.var, rel.inline, pattern):
                continue
            low, high = rel.hops
            if high is not None and low == high >= 2:
                return _Found(
                    pattern.clause,
                    pattern,
                    "chain",
                    "the nodes inside it",
                    _ends(names[rel.left], names[rel.right]),
                    _first(rel.types),
                )
            if high == 1:
                single.setdefault(rel.left, []).append((rel, pattern))
                single.setdefault(rel.right, []).append((rel, pattern))
                if not rel.types or len(rel.types) > 1 or set(rel.types) & PARALLEL_TYPES:
                    parallel.append((rel, pattern))
    for key, rels in single.items():
        if len(rels) < 2 or node_used[key]:
            continue
        (first, p1), (second, p2) = rels[:2]
        ends = [e for e in (first.left, first.right, second.left, second.right) if e != key]
        pattern = p1 if p1.clause > p2.clause else p2
        middle = f"({names[key]})" if not names[key].startswith("(") else names[key]
        return _Found(
            pattern.clause,
            pattern,
            "chain",
            f"{middle} or the relationships around it",
            _ends(*(names[e] for e in ends[:2])),
            _first(first.types + second.types),
        )
    if parallel:
        rel, pattern = parallel[0]
        label = "[:" + "|".join(rel.types) + "]" if rel.types else "[]"
        return _Found(
            pattern.clause,
            pattern,
            "parallel",
            f"the relationship {label}",
            _ends(names[rel.left], names[rel.right]),
            _first(rel.types),
        )
    return None


def _ends(*names: str) -> str:
    return ", ".join(names)


def _first(types: list[str]) -> str:
    return types[0] if types else ""


def _affected(masked: str, parts: list[Clause], after: int) -> str | None:
    """What depends on how many rows there are, once the MATCH clause ``after`` has run."""
    for clause in parts[after + 1 :]:
        if clause.keyword not in ("WITH", "RETURN"):
            continue
        text = masked[clause.body : clause.end]
        if re.match(r"\s*DISTINCT\b", text, re.IGNORECASE):
            return None
        sensitive = _SENSITIVE.search(text)
        if sensitive:
            if re.match(r"count\s*\(\s*\*", text[sensitive.start() :], re.IGNORECASE):
                return "count(*)"
            return f"{sensitive.group(1)}(...)"
        if _AGGREGATE.search(text):
            return None
        if clause.keyword == "RETURN":
            return "rows"
    return None


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
