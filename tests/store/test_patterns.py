"""Reading Cypher text: masking, clauses and MATCH patterns."""

from __future__ import annotations

import pytest

from kgrec.store.patterns import clauses, mask, match_patterns, parse_pattern


def test_mask_blanks_literals_and_comments_in_place() -> None:
    text = "MATCH (n {id: 'a)-[x]->('}) // RETURN *\nRETURN n /* c */"
    masked = mask(text)
    assert len(masked) == len(text)
    assert "a)-[x]->(" not in masked and "RETURN *" not in masked and "/* c */" not in masked
    assert masked.index("RETURN n") == text.index("RETURN n")


def test_clauses_split_the_top_level_only() -> None:
    text = (
        "MATCH (u:User) WHERE u.name STARTS WITH 'a' AND EXISTS { MATCH (u)-->() } "
        "OPTIONAL MATCH (u)-[r]->(i) WITH u, [x IN [1] WHERE x > 0] AS xs "
        "RETURN u ORDER BY u.id LIMIT 3 UNION ALL RETURN 1"
    )
    keywords = [c.keyword for c in clauses(mask(text))]
    assert keywords == [
        "MATCH", "WHERE", "OPTIONAL MATCH", "WITH", "RETURN", "ORDER BY", "LIMIT",
        "UNION ALL", "RETURN",
    ]  # fmt: skip


def test_patterns_nodes_relationships_and_hops() -> None:
    text = "MATCH p = (u:User {id: $u})-[:A|:B*2..]->(:Item)<-[r]-(g), (g)--(h) RETURN p"
    masked = mask(text)
    found = match_patterns(text, masked, clauses(masked))
    assert [p.path_var for p in found] == ["p", None]
    first = found[0]
    assert [(n.var, n.inline, n.label) for n in first.nodes] == [
        ("u", True, ":User"), (None, False, ":Item"), ("g", False, "")
    ]  # fmt: skip
    assert [(r.var, r.types, r.hops) for r in first.rels] == [
        (None, ["A", "B"], (2, None)), ("r", [], (1, 1))
    ]  # fmt: skip
    assert first.rels[1].left == first.nodes[1].key and first.rels[1].right == "g"
    assert found[1].text == "(g)--(h)"


@pytest.mark.parametrize(
    ("text", "hops"), [("-[*]->", (1, None)), ("-[*3]->", (3, 3)), ("-[*..4]->", (1, 4))]
)
def test_variable_length(text: str, hops: tuple[int, int | None]) -> None:
    pattern = parse_pattern(f"(a){text}(b)", 0, 0)
    assert pattern is not None and pattern.rels[0].hops == hops


@pytest.mark.parametrize("text", ["(a)-[:X]->", "(a", "x.y = 1", "(a)-[:X->(b)"])
def test_what_is_not_understood_is_skipped(text: str) -> None:
    assert parse_pattern(text, 0, 0) is None
