// Re-create recorded recommendations in a freshly built graph (see served_export.cypher).
// Parameters: $rows = [{source: string, target: string, props: map}, ...]
UNWIND $rows AS row
MATCH (u:User {id: row.source})
MATCH (i:Item {id: row.target})
CREATE (u)-[r:RECOMMENDED]->(i)
SET r += row.props
