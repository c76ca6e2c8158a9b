// Uniqueness of `id` for one node label on Neo4j 5 (also creates the index).
// __LABEL__ is replaced by a label that kgrec has checked against ^[A-Za-z][A-Za-z0-9_]*$.
CREATE CONSTRAINT IF NOT EXISTS FOR (n:__LABEL__) REQUIRE n.id IS UNIQUE
