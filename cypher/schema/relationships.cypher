// Relationships per type and endpoint label sets (for kgrec db schema).
MATCH (a)-[r]->(b)
RETURN labels(a) AS source, type(r) AS type, labels(b) AS target, count(r) AS relationships
