// How many of the given (source id, target id) pairs are linked by a relationship.
// Parameters: $rows = [{source: string, target: string}, ...]
// __SOURCE__, __TARGET__ (labels) and __TYPE__ (relationship type) are replaced by names
// that kgrec has checked against ^[A-Za-z][A-Za-z0-9_]*$.
UNWIND $rows AS row
MATCH (s:__SOURCE__ {id: row.source})-[:__TYPE__]->(t:__TARGET__ {id: row.target})
RETURN count(*) AS n
