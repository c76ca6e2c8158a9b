// Recorded recommendations (RECOMMENDED relationships), exported page by page so that a
// rebuild of the graph keeps them. Pages follow the internal relationship id (keyset
// pagination: on a graph nobody writes meanwhile, none is read twice or skipped).
// Parameters: $after (the last id of the previous page, -1 at first), $limit.
MATCH (u:User)-[r:RECOMMENDED]->(i:Item)
WHERE id(r) > $after
RETURN id(r) AS rid, u.id AS source, i.id AS target, properties(r) AS props
ORDER BY rid
LIMIT $limit
