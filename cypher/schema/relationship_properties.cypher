// Property names and value types per relationship type, with how many relationships hold
// each (for kgrec db schema). __TYPEOF__: typeOf (FalkorDB) or valueType (Neo4j 5).
MATCH ()-[r]->()
UNWIND keys(r) AS key
RETURN type(r) AS type, key, __TYPEOF__(r[key]) AS value_type, count(r) AS holders
