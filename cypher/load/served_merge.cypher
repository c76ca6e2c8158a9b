// Copy recorded recommendations into a freshly built graph once each: MERGE on the request id
// finds one copied already (see served_since.cypher), so copying it again changes nothing.
// Parameters: $rows = [{source: string, target: string, props: map with request_id}, ...]
UNWIND $rows AS row
MATCH (u:User {id: row.source})
MATCH (i:Item {id: row.target})
MERGE (u)-[r:RECOMMENDED {request_id: row.props.request_id}]->(i)
SET r += row.props
