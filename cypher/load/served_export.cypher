// Recorded recommendations (RECOMMENDED relationships), exported page by page so that a
// rebuild of the graph keeps them. Parameters: $skip, $limit.
MATCH (u:User)-[r:RECOMMENDED]->(i:Item)
RETURN u.id AS source, i.id AS target, properties(r) AS props
ORDER BY source, target
SKIP $skip LIMIT $limit
