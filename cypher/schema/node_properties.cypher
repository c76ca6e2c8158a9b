// Property names and value types per label set, with how many nodes hold each (for kgrec db
// schema). __TYPEOF__ is replaced by the engine's type function: typeOf (FalkorDB) or
// valueType (Neo4j 5).
MATCH (n)
UNWIND keys(n) AS key
RETURN labels(n) AS labels, key, __TYPEOF__(n[key]) AS type, count(n) AS holders
