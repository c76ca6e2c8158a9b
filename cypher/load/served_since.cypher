// Recorded recommendations written since a server time (ms, `r.ts`): the ones recorded while
// a rebuild copied the others over (see served_export.cypher).
// Parameters: $since (ms since the epoch, server clock)
MATCH (u:User)-[r:RECOMMENDED]->(i:Item)
WHERE r.ts >= $since
RETURN id(r) AS rid, u.id AS source, i.id AS target, properties(r) AS props
