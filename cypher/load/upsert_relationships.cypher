// Upsert a batch of relationships of one type (at most one per ordered pair of nodes).
// Parameters: $rows = [{source: string, target: string, props: map}, ...]
// __SOURCE__, __TARGET__ (labels) and __TYPE__ (relationship type) are replaced by names
// that kgrec has checked against ^[A-Za-z][A-Za-z0-9_]*$. Both endpoints must exist.
UNWIND $rows AS row
MATCH (s:__SOURCE__ {id: row.source})
MATCH (t:__TARGET__ {id: row.target})
MERGE (s)-[r:__TYPE__]->(t)
SET r += row.props
